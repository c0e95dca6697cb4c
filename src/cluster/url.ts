/**
 * How a Redis URL is shown to people (errors, warnings, the CLI): without its
 * password (docs/cluster.md, "Trust"). `redis://user:secret@host` reads
 * `redis://user:***@host`; a `password=` or `token=` query parameter is masked the same
 * way (so the function serves a ws:// URL carrying a token too).
 * Text only: it works on malformed URLs too, which is when an error shows one.
 * See docs/architecture.md for where the cluster's files sit.
 */

/** The URL with its password, if any, replaced by `***`. */
export function redactUrl(url: string): string {
  let shown = url.replace(/^([a-z][a-z0-9+.-]*:\/\/)([^/?#]*)/i, (_all, scheme: string, authority: string) => {
    // As WHATWG URLs: the user info ends at the authority's last '@' (a password may hold '@').
    const at = authority.lastIndexOf('@');
    if (at === -1) return `${scheme}${authority}`;
    const colon = authority.indexOf(':');
    const userinfo = colon === -1 || colon > at ? authority.slice(0, at) : `${authority.slice(0, colon)}:***`;
    return `${scheme}${userinfo}${authority.slice(at)}`;
  });
  shown = shown.replace(/([?&;](?:password|token)=)[^&#;]*/gi, '$1***');
  return shown;
}
