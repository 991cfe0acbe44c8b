// A Lua script run with EVALSHA, falling back to EVAL when Redis does not know it yet (NOSCRIPT,
// for example after a restart). The fallback is skipped when the caller says it is too late.
import { createHash } from 'node:crypto';

/** The scripting subset of a node-redis v5 client (or cluster). */
export interface ScriptingClient {
  /** Runs a Lua script Redis knows by its SHA-1 (`EVALSHA`). */
  evalSha(sha: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>;
  /** Runs a Lua script (`EVAL`), after a `NOSCRIPT` answer to `evalSha`. */
  eval(script: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>;
}

export class RedisScript {
  private readonly sha: string;

  constructor(private readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  async run(client: ScriptingClient, keys: string[], args: string[], mayFallBack: () => boolean = () => true): Promise<unknown> {
    const options = { keys, arguments: args };
    try {
      return await client.evalSha(this.sha, options);
    } catch (error) {
      if (!String((error as Error)?.message).startsWith('NOSCRIPT') || !mayFallBack()) throw error;
      return client.eval(this.source, options);
    }
  }
}
