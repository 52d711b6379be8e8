import { resolve } from 'node:path';
import { App } from './app';
import { AppError, errMessage } from './lib/errors';
import { log } from './lib/log';

/** Exit codes systemd understands: 0 clean stop, 1 failure (restart), 78 configuration error (EX_CONFIG). */
const EXIT_FAILURE = 1;
const EXIT_CONFIG = 78;

function confPath(argv: string[]): string {
  const i = argv.indexOf('--conf');
  const fromArg = i >= 0 ? argv[i + 1] : undefined;
  return resolve(fromArg ?? process.env.EDGEREC_CONF ?? 'conf/edgerec.properties');
}

async function main(): Promise<void> {
  const installDir = resolve(__dirname, '..', '..');
  const app = new App({ confPath: confPath(process.argv), installDir });
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      log.warn({ signal }, 'second stop signal: exiting now');
      process.exit(EXIT_FAILURE);
    }
    stopping = true;
    log.info({ signal }, 'stopping');
    app
      .stop()
      .then(() => {
        log.info('stopped');
        process.exit(0);
      })
      .catch((err: unknown) => {
        log.error({ err }, 'stop failed');
        process.exit(EXIT_FAILURE);
      });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGHUP', () => app.reload('SIGHUP'));
  process.on('uncaughtException', (err) => {
    // A bug must not end recordings silently: log it and keep running; systemd's watchdog catches a wedge.
    log.fatal({ err }, 'uncaught exception');
  });
  process.on('unhandledRejection', (err) => {
    log.error({ err }, 'unhandled rejection');
  });
  try {
    await app.start();
  } catch (err) {
    const code = err instanceof AppError && err.code === 'BAD_CONFIG' ? EXIT_CONFIG : EXIT_FAILURE;
    log.fatal({ err }, `start failed: ${errMessage(err)}`);
    await app.stop().catch(() => undefined);
    process.exit(code);
  }
}

void main();
