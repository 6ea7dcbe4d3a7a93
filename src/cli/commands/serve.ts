/**
 * `smhfs serve` (the SMH and BOS HTTP dialects, src/http/) and `smhfs token create|list|revoke|
 * rotate-secret` (SMH access tokens and the library secret of the served library). The library
 * keeps only hashes of both: a token is shown once, when made; the secret once, when rotated.
 */
import { type Command, InvalidArgumentError, Option } from 'commander';
import { SmhError } from '../../errors.js';
import { parseGrants } from '../../http/grants.js';
import { parseListen } from '../../http/listen.js';
import { UsageError, globalOptions, instrumentableStore, openLibrary, printJson, printLine, runAction } from '../context.js';
import { type LogLevel, logFileOption, logLevelOption, openLogger } from '../log.js';
import { Metrics, metricsOption } from '../metrics.js';
import { CliError } from '../usage.js';
import { isoTime, table } from '../format.js';

function parsePeriod(value: string): number {
  if (!/^[1-9][0-9]{0,9}$/.test(value)) throw new InvalidArgumentError('expected a positive number of seconds.');
  return Number(value);
}

function parsePositive(value: string): number {
  if (!/^[1-9][0-9]{0,9}$/.test(value)) throw new InvalidArgumentError('expected a positive whole number.');
  return Number(value);
}

function parseListenOption(value: string): string {
  try {
    parseListen(value);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
  return value;
}

/** Resolves on the first SIGINT/SIGTERM. */
function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (sig: NodeJS.Signals): void => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      resolve(sig);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}

export function register(program: Command): void {
  program
    .command('serve')
    .description('serve the library over HTTP: SMH file API under /api/v1, BOS object API under /v1/{bucket}')
    .addOption(new Option('--listen <host:port>', 'address to listen on').default('127.0.0.1:8080').argParser(parseListenOption))
    .addOption(new Option('--bos-access-key <key>', 'BOS access key (bce-auth-v1)').env('SMHFS_BOS_ACCESS_KEY'))
    .addOption(new Option('--bos-secret-key <key>', 'BOS secret key (bce-auth-v1)').env('SMHFS_BOS_SECRET_KEY'))
    .option('--log', 'log every request (JSON lines on stdout; tokens, secrets and signatures redacted)')
    .addOption(new Option('--max-connections <n>', 'connections open at once; more are refused').default(256).argParser(parsePositive))
    .addOption(new Option('--request-timeout <seconds>', 'a whole request (an upload included) must arrive within this').default(3600).argParser(parsePositive))
    .addOption(logFileOption())
    .addOption(logLevelOption())
    .addOption(metricsOption())
    .action(
      runAction(
        'serve',
        async (
          opts: {
            listen: string;
            bosAccessKey?: string;
            bosSecretKey?: string;
            log?: boolean;
            maxConnections: number;
            requestTimeout: number;
            logFile?: string;
            logLevel?: LogLevel;
            metrics?: string;
          },
          cmd: Command,
        ) => {
          if ((opts.bosAccessKey === undefined) !== (opts.bosSecretKey === undefined)) {
            throw new UsageError('--bos-access-key and --bos-secret-key go together');
          }
          const logger = openLogger({ file: opts.logFile, level: opts.logLevel });
          try {
            const metrics = opts.metrics !== undefined ? new Metrics('serve') : undefined;
            let metricsServer: { url: string; close: () => Promise<void> } | undefined;
            if (metrics && opts.metrics !== undefined) {
              try {
                metricsServer = await metrics.serve(opts.metrics);
              } catch (e) {
                throw new CliError('MetricsUnavailable', `cannot serve metrics at ${opts.metrics}: ${(e as Error).message}`);
              }
            }
            const g = globalOptions(cmd);
            const { lib } = await openLibrary(g, metrics ? { wrap: (store, dir) => instrumentableStore(store, dir, (s) => metrics.instrumentStore(s)) } : {});
            const { ContentReader } = await import('../../vfs/reader.js');
            const reader = new ContentReader(lib); // the one read path; its page cache serves every download
            metrics?.setSources({ cache: () => reader.cache.stats() });
            lib.startBackground(); // retention, expired tokens, garbage collection, queued tasks
            const bos = opts.bosAccessKey !== undefined ? { accessKey: opts.bosAccessKey, secretKey: opts.bosSecretKey! } : undefined;
            // Loaded here, not at start-up: every other command would pay for Fastify.
            const { startServer } = await import('../../http/server.js');
            const server = await startServer({
              lib,
              reader,
              listen: opts.listen,
              bos,
              logger: opts.log === true,
              limits: { maxConnections: opts.maxConnections, requestTimeoutMs: opts.requestTimeout * 1000 },
            });
            if (metrics) {
              // Every request, from arrival to the last byte of the answer, by dialect and method.
              server.app.server.on('request', (req: { method?: string; url?: string }, res: NodeJS.EventEmitter) => {
                const t0 = performance.now();
                const op = `${(req.url ?? '').startsWith('/api/') ? 'smh' : 'bos'} ${req.method ?? '?'}`;
                res.once('finish', () => metrics.observeOp(op, (performance.now() - t0) / 1000));
              });
            }
            // Listen for signals before announcing: a reader of "serving" may signal at once.
            const signalled = untilSignal();
            logger.info(`serving ${lib.dir} at ${server.url}`);
            logger.info(`  SMH  ${server.url}/api/v1/file/${lib.libraryId}/{space}/{path}  (smhfs token create --grant …)`);
            logger.info(
              bos
                ? `  BOS  ${server.url}/v1/{bucket}/{key}  (bucket = space, e.g. "-"; access key ${bos.accessKey})`
                : `  BOS  disabled (no --bos-access-key/--bos-secret-key)`,
            );
            if (metricsServer) logger.info(`metrics at ${metricsServer.url}`);
            logger.info('stop with Ctrl-C');
            const sig = await signalled;
            logger.info(`${sig}: stopping`);
            await server.close();
            await metricsServer?.close();
          } finally {
            logger.close();
          }
        },
      ),
    );

  const token = program.command('token').description('SMH access tokens for the library');
  token
    .command('create')
    .description('create an SMH access token for --space (prints the token; --json prints {accessToken, expiresIn})')
    .requiredOption('--grant <list>', `comma-separated grants, e.g. create_symlink,upload_file (or admin)`)
    .addOption(new Option('--period <seconds>', 'validity in seconds').default(86400).argParser(parsePeriod))
    .option('--user-id <id>', 'user identity recorded with the token')
    .action(
      runAction('token create', async (opts: { grant: string; period: number; userId?: string }, cmd: Command) => {
        const g = globalOptions(cmd);
        let grants: string[];
        try {
          grants = parseGrants(opts.grant);
        } catch (e) {
          throw new UsageError(e instanceof SmhError ? e.message : String(e));
        }
        const { lib } = await openLibrary(g);
        const t = await lib.tokens.create({ space: g.space ?? '-', grants, periodSec: opts.period, ...(opts.userId ? { userId: opts.userId } : {}) });
        if (g.json) printJson({ accessToken: t.accessToken, expiresIn: t.expiresIn, libraryId: lib.libraryId, spaceId: g.space ?? '-' });
        else printLine(t.accessToken);
      }),
    );
  registerTokenAdmin(token);
}

/** `token list|revoke|rotate-secret`, beside `token create`. */
function registerTokenAdmin(token: Command): void {
  token
    .command('list')
    .description('list the unexpired SMH access tokens (id, space, grants, user, created, expires; never the tokens themselves)')
    .action(
      runAction('token list', async (_opts: Record<string, never>, cmd: Command) => {
        const g = globalOptions(cmd);
        const { lib } = await openLibrary(g);
        const tokens = lib.tokens.list();
        if (g.json) {
          printJson(
            tokens.map((t) => ({
              id: t.id,
              space: t.space,
              grants: t.grants,
              userId: t.userId,
              created: isoTime(t.createdAtUs),
              expires: isoTime(t.expiresAtUs),
            })),
          );
          return;
        }
        if (tokens.length === 0) {
          printLine('no tokens');
          return;
        }
        const rows = [['ID', 'SPACE', 'GRANTS', 'USER', 'CREATED', 'EXPIRES']];
        for (const t of tokens) rows.push([String(t.id), t.space, t.grants.join(',') || '(read only)', t.userId ?? '-', isoTime(t.createdAtUs), isoTime(t.expiresAtUs)]);
        for (const line of table(rows, [0])) printLine(line);
      }),
    );
  token
    .command('revoke')
    .description('revoke SMH access tokens at once: by id (from `token list`), or --token TOKEN, or --all')
    .argument('[ids...]', 'token ids')
    .option('--token <token>', 'the token itself')
    .option('--all', 'every token of the library')
    .action(
      runAction('token revoke', async (ids: string[], opts: { token?: string; all?: boolean }, cmd: Command) => {
        const given = (ids.length > 0 ? 1 : 0) + (opts.token !== undefined ? 1 : 0) + (opts.all ? 1 : 0);
        if (given !== 1) throw new UsageError('give token ids, or --token TOKEN, or --all');
        const numbers = ids.map((id) => {
          if (!/^[1-9][0-9]{0,15}$/.test(id)) throw new UsageError(`not a token id: ${JSON.stringify(id.slice(0, 40))} (see smhfs token list)`);
          return Number(id);
        });
        const { lib } = await openLibrary(globalOptions(cmd));
        if (opts.all) {
          const all = lib.tokens.list();
          for (const t of all) lib.tokens.revoke(t.id);
          printLine(`revoked ${all.length} token${all.length === 1 ? '' : 's'}`);
          return;
        }
        if (opts.token !== undefined) {
          if (!lib.tokens.revoke(opts.token)) throw new SmhError('FileNotFound', 'no such token (it may have expired or been revoked)');
          printLine('revoked 1 token');
          return;
        }
        const missing = numbers.filter((id) => !lib.tokens.revoke(id));
        if (missing.length > 0) throw new SmhError('FileNotFound', `no token with id ${missing.join(', ')} (see smhfs token list)`);
        printLine(`revoked ${numbers.length} token${numbers.length === 1 ? '' : 's'}`);
      }),
    );
  token
    .command('rotate-secret')
    .description('make a new library secret for the SMH token endpoint and print it (the only time it is shown; the old one stops working; tokens stay valid)')
    .action(
      runAction('token rotate-secret', async (_opts: Record<string, never>, cmd: Command) => {
        const g = globalOptions(cmd);
        const { lib } = await openLibrary(g);
        const secret = lib.rotateLibrarySecret();
        if (g.json) printJson({ libraryId: lib.libraryId, librarySecret: secret });
        else printLine(secret);
      }),
    );
}
