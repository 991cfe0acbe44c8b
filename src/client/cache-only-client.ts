/**
 * The MSAL client of a silent call's first attempt: it answers from the partition it was given and
 * never reaches the network. A client bound to the partition through the cache plugin has MSAL
 * deserialize the partition twice per call (`overwriteCache` loads it through the plugin, then
 * parses the same text again); this one is given the partition once, and a cache hit (nearly every
 * silent call) needs nothing else. Anything more, a refresh or any other request, fails here at
 * once and unsent, and the call runs again, as before, in a client bound to the partition.
 */
import { ConfidentialClientApplication } from '@azure/msal-node';
import type { Configuration } from '@azure/msal-node';

/** What a cache-only client throws instead of sending a request (MSAL may wrap or swallow it: see {@link CacheOnlyClient.wentToNetwork}). */
class NetworkNeeded extends Error {
  constructor() {
    super('this client answers from its cache only');
    this.name = 'NetworkNeeded';
  }
}

export class CacheOnlyClient extends ConfidentialClientApplication {
  #wentToNetwork = false;

  /**
   * @param configuration - MSAL's configuration, without a cache plugin
   * @param json - the partition as MSAL serializes it, loaded into the client's cache
   */
  constructor(configuration: Configuration, json: string) {
    super(configuration);
    const refuse = async (): Promise<never> => {
      this.#wentToNetwork = true;
      throw new NetworkNeeded();
    };
    this.config.system.networkClient = { sendGetRequestAsync: refuse, sendPostRequestAsync: refuse };
    this.getTokenCache().deserialize(json);
  }

  /**
   * Whether MSAL tried to send a request: then its answer is not a plain cache hit, even when it
   * gave one (a proactive refresh fails silently and still returns the cached token).
   */
  get wentToNetwork(): boolean {
    return this.#wentToNetwork;
  }
}
