// Parent side of a bench worker: a TypeScript file run in its own OS process (node --import tsx),
// driven by JSON lines on stdin/stdout ({id, op, args} -> {id, ok, value | error}).
import { spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

export class WorkerProcess {
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  private stderr = '';

  private constructor(private readonly child: ChildProcessWithoutNullStreams) {}

  /**
   * Starts `bench/workers/<file>` and waits for its ready line.
   *
   * @param nodeFlags - extra node flags, for example `--expose-gc`
   */
  static async start(file: string, env: NodeJS.ProcessEnv, nodeFlags: string[] = []): Promise<WorkerProcess> {
    const child = spawn(process.execPath, [...nodeFlags, '--import', 'tsx', join(__dirname, '..', 'workers', file)], {
      env: { ...process.env, ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const worker = new WorkerProcess(child);
    child.stderr.on('data', (chunk: Buffer) => {
      worker.stderr = (worker.stderr + chunk.toString()).slice(-4000);
    });
    child.once('exit', (code, signal) => {
      const error = new Error(`bench worker ${file} exited (${code ?? signal}): ${worker.stderr}`);
      for (const { reject } of worker.pending.values()) reject(error);
      worker.pending.clear();
    });
    await new Promise<void>((resolve, reject) => {
      const lines = createInterface({ input: child.stdout });
      child.once('exit', (code) => reject(new Error(`bench worker ${file} exited (${code}) before it was ready: ${worker.stderr}`)));
      lines.on('line', (line) => {
        const message = JSON.parse(line) as { ready?: boolean; id?: number; ok?: boolean; value?: unknown; error?: string };
        if (message.ready) return resolve();
        const waiter = worker.pending.get(message.id!);
        worker.pending.delete(message.id!);
        if (message.ok) waiter?.resolve(message.value);
        else waiter?.reject(new Error(`bench worker ${file}: ${message.error}`));
      });
    });
    return worker;
  }

  get pid(): number {
    return this.child.pid!;
  }

  call<T>(op: string, args: Record<string, unknown> = {}): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      this.child.stdin.write(`${JSON.stringify({ id, op, args })}\n`, (error) => error && reject(error));
    });
  }

  /** Closes stdin (the worker cleans up and exits) and waits; kills it if it does not exit in 10 s. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.stdin.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
}
