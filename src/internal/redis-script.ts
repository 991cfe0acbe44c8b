// A Lua script run with EVALSHA, falling back to EVAL when Redis does not know it yet (NOSCRIPT,
// for example after a restart). The fallback is skipped when the caller says it is too late.
// defineScript gives a script named keys and arguments and a typed reply.
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

/**
 * A script's declaration, in the spirit of node-redis `defineScript` (`NUMBER_OF_KEYS`,
 * `transformReply`): its keys and arguments by name, in order, and what its reply means.
 */
export interface ScriptDefinition<Key extends string, Arg extends string, Reply> {
  /** `KEYS`, in order: their count is the script's number of keys. The Lua names each `<name>Key`. */
  keys: readonly Key[];
  /** `ARGV`, in order. The Lua names each as it is named here. */
  args: readonly Arg[];
  /**
   * The Lua. It starts by naming every key and argument, one line each, in the declared order
   * (`local lockKey = KEYS[1]`, ..., `local owner = ARGV[1]`, ...), and uses only those names after.
   */
  lua: string;
  /** The reply, typed. */
  transformReply(reply: unknown): Reply;
}

/** A defined script: `KEYS` and `ARGV` given by name (numbers are sent as their decimal text). */
export type ScriptCall<Key extends string, Arg extends string, Reply> = (
  client: ScriptingClient,
  keys: Readonly<Record<Key, string>>,
  args: Readonly<Record<Arg, string | number>>,
  mayFallBack?: () => boolean,
) => Promise<Reply>;

/**
 * A script that takes its keys and arguments by name and returns a typed reply.
 *
 * @throws Error at definition (module load) when the Lua's first lines do not name the declared
 *   keys and arguments in order, or when the rest of it still reads `KEYS[n]` or `ARGV[n]`
 */
export function defineScript<const Key extends string, const Arg extends string, Reply>(
  definition: ScriptDefinition<Key, Arg, Reply>,
): ScriptCall<Key, Arg, Reply> {
  const { keys: keyNames, args: argNames, lua, transformReply } = definition;
  const header = [
    ...keyNames.map((name, index) => `local ${name}Key = KEYS[${index + 1}]`),
    ...argNames.map((name, index) => `local ${name} = ARGV[${index + 1}]`),
  ];
  const lines = lua.trim().split('\n');
  if (lines.slice(0, header.length).join('\n') !== header.join('\n') || /\b(KEYS|ARGV)\[/.test(lines.slice(header.length).join('\n'))) {
    throw new Error(`a script must start with these lines, and name KEYS and ARGV only there:\n${header.join('\n')}`);
  }
  const script = new RedisScript(lua);
  return async (client, keys, args, mayFallBack) =>
    transformReply(
      await script.run(
        client,
        keyNames.map((name) => keys[name]),
        argNames.map((name) => String(args[name])),
        mayFallBack,
      ),
    );
}
