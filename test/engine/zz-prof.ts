import { EngineProject } from "./project";
(async () => {
  const p = await EngineProject.create({ env: { CLOUDFLARE_API_TOKEN: "t" } });
  const n = Number(process.argv[2] ?? 10000);
  const rows = Array.from({ length: n }, (_, i) => JSON.stringify({ url: `http://127.0.0.1:9/img/${i}.png`, id: `${i}.png`, hash: `h${i}` }));
  await p.writeFile("m.ndjson", rows.join("\n") + "\n");
  await p.initStack("p", { "sourcing-kit:apiBaseUrl": "http://127.0.0.1:9/client/v4", "sourcing-kit:accountId": "a", "sourcing-kit:accountHash": "h", "sourcing-kit:scopedToken": false,
    "sourcing-kit:sources": [{ kind: "manifest", name: "bench", path: "m.ndjson", idPrefix: "p" }] });
  console.log(p.root);
})();
