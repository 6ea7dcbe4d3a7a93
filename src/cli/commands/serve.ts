/**
 * `smhfs serve` (the SMH and BOS HTTP dialects, src/http/) and `smhfs token create` (SMH access
 * tokens for the served library).
 */
import { type Command, InvalidArgumentError, Option } from 'commander';
import { SmhError } from '../../errors.js';
import { parseGrants } from '../../http/grants.js';
import { parseListen } from '../../http/listen.js';
import { UsageError, globalOptions, instrumentableStore, openLibrary, printJson, printLine, runAction } from '../context.js';
import { type LogLevel, logFileOption, logLevelOption, openLogger } from '../log.js';
import { Metrics, metricsOption } from '../metrics.js';
import { CliError } from '../usage.js';

function parsePeriod(value: string): number {
  if (!/^[1-9][0-9]{0,9}$/.test(value)) throw new InvalidArgumentError('expected a positive number of seconds.');
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
    .option('--log', 'log every request (JSON lines on stdout)')
    .addOption(logFileOption())
    .addOption(logLevelOption())
    .addOption(metricsOption())
    .action(
      runAction(
        'serve',
        async (
          opts: { listen: string; bosAccessKey?: string; bosSecretKey?: string; log?: boolean; logFile?: string; logLevel?: LogLevel; metrics?: string },
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
            metrics?.setSources({ cache: () => lib.cache.stats() });
            lib.startBackground(); // retention, expired tokens, garbage collection, queued tasks
            const bos = opts.bosAccessKey !== undefined ? { accessKey: opts.bosAccessKey, secretKey: opts.bosSecretKey! } : undefined;
            // Loaded here, not at start-up: every other command would pay for Fastify.
            const { startServer } = await import('../../http/server.js');
            const server = await startServer({ lib, listen: opts.listen, bos, logger: opts.log === true });
            if (metrics) {
              // Every request, from arrival to the last byte of the answer, by dialect and method.
              server.app.server.on('request', (req: { method?: string; url?: string }, res: NodeJS.EventEmitter) => {
                const t0 = performance.now();
                const op = `${(req.url ?? '').startsWith('/api/') ? 'smh' : 'bos'} ${req.method ?? '?'}`;
                res.once('finish', () => metrics.observeOp(op, (performance.now() - t0) / 1000));
              });
            }
            logger.info(`serving ${lib.dir} at ${server.url}`);
            logger.info(`  SMH  ${server.url}/api/v1/file/${lib.libraryId}/{space}/{path}  (smhfs token create --grant …)`);
            logger.info(
              bos
                ? `  BOS  ${server.url}/v1/{bucket}/{key}  (bucket = space, e.g. "-"; access key ${bos.accessKey})`
                : `  BOS  disabled (no --bos-access-key/--bos-secret-key)`,
            );
            if (metricsServer) logger.info(`metrics at ${metricsServer.url}`);
            logger.info('stop with Ctrl-C');
            const sig = await untilSignal();
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
        const t = await lib.createToken({ space: g.space ?? '-', grants, periodSec: opts.period, ...(opts.userId ? { userId: opts.userId } : {}) });
        if (g.json) printJson({ accessToken: t.accessToken, expiresIn: t.expiresIn, libraryId: lib.libraryId, spaceId: g.space ?? '-' });
        else printLine(t.accessToken);
      }),
    );
}
