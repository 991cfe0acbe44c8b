/**
 * Real, throwaway PostgreSQL servers for tests (the Keyv Postgres adapter needs a real server): a fresh
 * `initdb` cluster in a temp directory, trust auth, loopback only, fsync off, deleted on stop.
 * Needs Debian's `postgresql` package (`initdb` and `pg_ctl` on PATH or under /usr/lib/postgresql/<version>/bin).
 */
import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { access, chown, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import { findFreePort } from './redis-server';

const execFileAsync = promisify(execFile);

/** The superuser initdb creates; also, as initdb refuses to run as root, the OS user the server runs as when we are root. */
const POSTGRES_USER = 'postgres';

async function hasAccess(path: string, mode: number): Promise<boolean> {
  try {
    await access(path, mode);
    return true;
  } catch {
    return false;
  }
}

const isExecutable = (path: string): Promise<boolean> => hasAccess(path, constants.X_OK);

const pathDirectories = (): string[] => (process.env.PATH ?? '').split(delimiter).filter(Boolean);

/** A directory holding both `initdb` and `pg_ctl`: from PATH first, else the newest /usr/lib/postgresql/<version>/bin. */
async function findPostgresBinDirectory(): Promise<string> {
  const fromPath = pathDirectories();
  const versions = await readdir('/usr/lib/postgresql').catch(() => [] as string[]);
  const fromDebian = versions
    .filter((version) => /^\d+(\.\d+)?$/.test(version))
    .sort((a, b) => Number(b) - Number(a))
    .map((version) => join('/usr/lib/postgresql', version, 'bin'));
  for (const directory of [...fromPath, ...fromDebian]) {
    if ((await isExecutable(join(directory, 'initdb'))) && (await isExecutable(join(directory, 'pg_ctl')))) return directory;
  }
  throw new Error(
    'PostgresServer: initdb/pg_ctl not found on PATH or under /usr/lib/postgresql/<version>/bin; ' +
      "install Debian's postgresql package (apt-get install postgresql)",
  );
}

/** `runuser`, which root's PATH may lack (it lives in /usr/sbin). */
async function findRunuser(): Promise<string> {
  for (const directory of [...pathDirectories(), '/usr/sbin', '/sbin']) {
    const path = join(directory, 'runuser');
    if (await isExecutable(path)) return path;
  }
  throw new Error(
    'PostgresServer: running as root needs runuser (util-linux) to run PostgreSQL as the postgres user, and it was not found',
  );
}

/** Quotes one word for the shell that `pg_ctl -o` hands its options to. */
const shellQuote = (word: string): string => `'${word.replace(/'/g, `'\\''`)}'`;

async function idOf(flag: '-u' | '-g', user: string): Promise<number> {
  try {
    const { stdout } = await execFileAsync('id', [flag, user]);
    return Number(stdout.trim());
  } catch (error) {
    const { stderr } = error as { stderr?: string };
    throw new Error(
      `PostgresServer: running as root needs a ${user} user (Debian's postgresql package creates it): ${stderr?.trim() || (error as Error).message}`,
    );
  }
}

/**
 * One PostgreSQL server with its own cluster; the superuser is `postgres`, database `postgres`, no password.
 *
 * @example
 * ```ts
 * import KeyvPostgres from '@keyv/postgres';
 *
 * const postgres = await PostgresServer.start();
 * const cache = new DistributedTokenCache({ store: new Keyv({ store: new KeyvPostgres({ uri: postgres.url }) }) });
 * // ...
 * await cache.close();
 * await postgres.stop();
 * ```
 */
export class PostgresServer {
  #stopping: Promise<void> | undefined;

  readonly #binDirectory: string;
  readonly #directory: string;
  readonly #runuser: string | undefined;
  private constructor(
    /** The TCP port it listens on, on 127.0.0.1. */
    readonly port: number,
    binDirectory: string,
    directory: string,
    /** Set when we are root: initdb and pg_ctl then run through it, as the postgres user. */
    runuser: string | undefined,
  ) {
    this.#binDirectory = binDirectory;
    this.#directory = directory;
    this.#runuser = runuser;
  }

  /** `postgresql://postgres@127.0.0.1:<port>/postgres`, for `pg` (and `@keyv/postgres`). */
  get url(): string {
    return `postgresql://${POSTGRES_USER}@127.0.0.1:${this.port}/postgres`;
  }

  get #dataDirectory(): string {
    return join(this.#directory, 'data');
  }

  get #logFile(): string {
    return join(this.#directory, 'postgres.log');
  }

  /**
   * Creates a cluster in a new temp directory and starts a server on a free loopback port; resolves once it
   * accepts connections (`pg_ctl -w`). Takes about a second, mostly `initdb`.
   *
   * @throws if PostgreSQL is not installed, or `initdb` or the server fails (with their stderr or log tail)
   */
  static async start(): Promise<PostgresServer> {
    const binDirectory = await findPostgresBinDirectory();
    const runuser = process.getuid?.() === 0 ? await findRunuser() : undefined;
    const directory = await mkdtemp(join(tmpdir(), 'postgres-test-'));
    const server = new PostgresServer(await findFreePort(), binDirectory, directory, runuser);
    try {
      if (runuser) await chown(directory, await idOf('-u', POSTGRES_USER), await idOf('-g', POSTGRES_USER));
      await server.#initdb();
      await server.#pgCtlStart();
    } catch (error) {
      await server.stop().catch(() => undefined);
      throw error;
    }
    return server;
  }

  async #initdb(): Promise<void> {
    await this.#run('initdb', ['-D', this.#dataDirectory, '-A', 'trust', '-U', POSTGRES_USER, '--no-sync', '-E', 'UTF8', '--locale=C']);
  }

  async #pgCtlStart(): Promise<void> {
    const options = [
      '-c listen_addresses=127.0.0.1',
      `-c port=${this.port}`,
      `-c unix_socket_directories=${shellQuote(this.#directory)}`,
      '-c fsync=off',
    ].join(' ');
    try {
      await this.#run('pg_ctl', ['-D', this.#dataDirectory, '-o', options, '-w', '-l', this.#logFile, 'start']);
    } catch (error) {
      const log = await readFile(this.#logFile, 'utf8').catch(() => '');
      throw new Error(`${(error as Error).message}\nserver log: ${log.slice(-1000)}`);
    }
  }

  /** Runs `initdb` or `pg_ctl`, as the postgres user when we are root; fails with its stderr. */
  async #run(binary: 'initdb' | 'pg_ctl', args: string[]): Promise<void> {
    const path = join(this.#binDirectory, binary);
    const [file, ...fileArgs] = this.#runuser ? [this.#runuser, '-u', POSTGRES_USER, '--', path, ...args] : [path, ...args];
    try {
      // cwd: the postgres user may not be allowed into ours.
      await execFileAsync(file!, fileArgs, { cwd: this.#directory });
    } catch (error) {
      const { stderr } = error as { stderr?: string };
      throw new Error(`PostgresServer: ${basename(path)} failed: ${stderr?.trim() || (error as Error).message}`);
    }
  }

  /**
   * Stops the server at once (`pg_ctl -m immediate`: connections drop) but keeps its data, so that
   * {@link restart} can start it again on the same port; for outage tests.
   */
  async kill(): Promise<void> {
    await this.#run('pg_ctl', ['-D', this.#dataDirectory, '-m', 'immediate', '-w', 'stop']);
  }

  /** Starts again a server stopped by {@link kill}, on the same port and data; resolves once it accepts connections. */
  async restart(): Promise<void> {
    await this.#pgCtlStart();
  }

  /** Stops the server (`pg_ctl -m immediate`) and deletes its directory. Safe to call again. */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      try {
        // Only if a server was started (it has a pid file), so that cleaning up after a failed initdb stays quiet.
        if (await hasAccess(join(this.#dataDirectory, 'postmaster.pid'), constants.F_OK)) {
          await this.#run('pg_ctl', ['-D', this.#dataDirectory, '-m', 'immediate', '-w', 'stop']).catch((error: Error) => {
            // Already gone (e.g. crashed): there is nothing left to stop.
            if (!/no server running|does not exist|No such process/i.test(error.message)) throw error;
          });
        }
      } finally {
        await rm(this.#directory, { recursive: true, force: true });
      }
    })();
    return this.#stopping;
  }
}
