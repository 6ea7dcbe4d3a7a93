/**
 * The SMH load generator of bench/postgres-mount.ts: keeps `conns` requests in flight for
 * `seconds`, each `GET /api/v1/file/LIB/-/dK/fI?info` of a random file, spread round-robin over
 * the given `serve` URLs (Node's fetch keeps connections alive). Prints {requests, errors,
 * seconds, cpu} (cpu: this process's CPU seconds, so the bench can say what the client cost).
 */
const o = JSON.parse(process.argv[2]!) as { urls: string[]; token: string; library: string; files: number; perDir: number; conns: number; seconds: number };
let requests = 0;
let errors = 0;
let next = 0;
const cpu0 = process.cpuUsage();
const t0 = performance.now();
const end = t0 + o.seconds * 1000;
async function one(): Promise<void> {
  while (performance.now() < end) {
    const i = Math.floor(Math.random() * o.files);
    const url = o.urls[next++ % o.urls.length]!;
    try {
      const r = await fetch(`${url}/api/v1/file/${o.library}/-/d${Math.floor(i / o.perDir)}/f${i % o.perDir}?info`, { headers: { authorization: `Bearer ${o.token}` } });
      await r.arrayBuffer();
      if (r.status === 200) requests++;
      else errors++;
    } catch {
      errors++;
    }
  }
}
await Promise.all(Array.from({ length: o.conns }, () => one()));
const seconds = (performance.now() - t0) / 1000;
const cpu = process.cpuUsage(cpu0);
process.stdout.write(JSON.stringify({ requests, errors, seconds, cpu: (cpu.user + cpu.system) / 1e6 }));
