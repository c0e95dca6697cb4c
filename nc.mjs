import net from 'node:net';
const [port, text] = [Number(process.argv[2]), process.argv[3].replace(/\\n/g, '\n').replace(/\\r/g, '\r')];
const s = net.connect(port, '127.0.0.1', () => s.write(text));
let got = '';
s.on('data', (d) => (got += d));
s.on('error', () => {});
s.on('close', () => { console.log(JSON.stringify(got.split('\r\n')[0].slice(0, 80)), 'closed'); process.exit(0); });
setTimeout(() => { console.log(JSON.stringify(got.slice(0, 80)), 'open'); process.exit(0); }, 700);
