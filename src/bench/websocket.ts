/**
 * `echocast bench --ws`: which targets run with WebSocket clients, and which
 * engines can. The references are per transport: baseline-ws (a broadcast on
 * the `ws` package) with --ws, baseline-net and baseline-c-epoll without.
 */
import { addonHas } from '../engines/load-addon.js';
import type { BenchTarget } from './protocol.js';

/** The references that take TCP clients only, and the one that takes WebSocket clients only. */
export const TCP_ONLY: readonly string[] = ['baseline-net', 'baseline-c-epoll'];
export const WS_ONLY: readonly string[] = ['baseline-ws'];

/** Why `target` cannot run with (ws) or without (!ws) WebSocket clients, or null. */
export function transportRule(target: string, ws: boolean): string | null {
  if (ws && TCP_ONLY.includes(target)) return `${target} measures TCP clients only; with --ws the reference is baseline-ws`;
  if (!ws && WS_ONLY.includes(target)) return `${target} measures WebSocket clients: it needs --ws`;
  return null;
}

/** Why an engine cannot take WebSocket clients here, or null (the js engine and baseline-ws always can). */
export function webSocketUnsupported(target: BenchTarget): string | null {
  if (target !== 'native-threads' && target !== 'native-poll') return null;
  return addonHas('websocket') ? null : 'this addon build has no WebSocket support';
}
