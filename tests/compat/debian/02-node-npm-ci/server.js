'use strict';
// A counter over HTTP: GET /add/N adds N (if it is a number) and shows the total.
const http = require('http');
const isNumber = require('is-number');
const escapeHtml = require('escape-html');

let total = 0;

function handle(path) {
  const m = /^\/add\/(.*)$/.exec(path);
  if (!m) return { status: 200, body: `<p>total: ${total}</p>` };
  const arg = decodeURIComponent(m[1]);
  if (!isNumber(arg)) return { status: 400, body: `<p>not a number: ${escapeHtml(arg)}</p>` };
  total += Number(arg);
  return { status: 200, body: `<p>total: ${total}</p>` };
}

function selfTest() {
  const bad = handle('/add/%3Cb%3E');
  if (bad.status !== 400 || !bad.body.includes('&lt;b&gt;')) throw new Error('escape failed');
  if (handle('/add/41').body !== '<p>total: 41</p>') throw new Error('add failed');
  total = 0;
  console.log('self test ok');
}

module.exports = { handle, selfTest };

if (require.main === module) {
  http.createServer((req, res) => {
    const r = handle(req.url);
    res.writeHead(r.status, { 'content-type': 'text/html' });
    res.end(r.body);
  }).listen(process.env.PORT || 8080);
}
