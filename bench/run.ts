// npm run bench -- <name>   runs bench/<name>/index.ts (gateway, api-keys, login, vault, admin, erasure, credits, soak…)
const name = process.argv[2];
if (!name) {
  process.stderr.write('usage: npm run bench -- <gateway|api-keys|login|vault|admin|erasure|credits|soak>\n');
  process.exit(2);
}
await import(`./${name}/index.ts`);
export {};
