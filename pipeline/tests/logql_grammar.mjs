// Parses generated LogQL with Grafana's own grammar (@grafana/lezer-logql). Reads JSON lines
// {"query": ..., "plain": ...} on stdin (`plain`: the same query built with plain values);
// prints one JSON line per query: ok, or why not. A query is ok when it parses with no error
// node and its text outside string literals is the plain query's: user text only in strings.
import { createRequire } from 'module';
import { createInterface } from 'readline';

const require = createRequire(process.env.LEZER_DIR + '/');
const { parser } = require('@grafana/lezer-logql');

function outside(query) {
  const tree = parser.parse(query);
  let error = null;
  const strings = [];
  tree.iterate({
    enter: (n) => {
      if (n.type.isError && error === null) error = `error node at ${n.from}`;
      if (n.type.name === 'String') strings.push([n.from, n.to]);
    },
  });
  let text = '';
  let at = 0;
  for (const [from, to] of strings) {
    text += query.slice(at, from) + 'STR';
    at = to;
  }
  return { error, text: text + query.slice(at) };
}

for await (const line of createInterface({ input: process.stdin })) {
  const { query, plain } = JSON.parse(line);
  const got = outside(query);
  const want = outside(plain);
  const ok = got.error === null && got.text === want.text;
  console.log(JSON.stringify({ ok, why: got.error ?? (ok ? null : `structure ${got.text} != ${want.text}`), query }));
}
