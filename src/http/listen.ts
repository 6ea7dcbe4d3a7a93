/**
 * `--listen HOST:PORT` parsing, on its own so the CLI can check the option without loading the
 * HTTP server (Fastify is most of a CLI command's start-up time).
 */
export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(listen.trim());
  if (!m) throw new Error(`--listen must be HOST:PORT, got ${JSON.stringify(listen)}`);
  const host = m[1] ?? (m[2] || '127.0.0.1');
  const port = Number(m[3]);
  if (port > 65535) throw new Error(`port out of range in ${JSON.stringify(listen)}`);
  return { host, port };
}
