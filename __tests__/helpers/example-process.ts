// Runs an example's main.ts in its own OS process (through tsx), as `npm run example:...` does,
// for claims about several instances. The child inherits REDIS_URL and NODE_EXTRA_CA_CERTS (so it
// trusts the fake Entra ID's test CA); the examples print a line starting with "Listening on "
// once they take requests.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';

export interface ExampleProcess {
  /** Ends the process (SIGTERM: the example shuts down in order) and waits for it to exit. */
  stop(): Promise<void>;
}

/** Starts `file` with `args` and `env` (added to this process's) and resolves once it listens; rejects with its output if it exits first. */
export async function startExampleProcess(file: string, args: string[], env: NodeJS.ProcessEnv): Promise<ExampleProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', file, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = once(child, 'exit');
  let output = '';
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const lines = createInterface({ input: child.stdout });
  await new Promise<void>((resolve, reject) => {
    lines.on('line', (line) => {
      output += `${line}\n`;
      if (line.startsWith('Listening on ')) resolve();
    });
    void exited.then(([code]) => reject(new Error(`${file} exited (${String(code)}) before listening:\n${output}`)));
  });
  return {
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
