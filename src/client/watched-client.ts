/**
 * An MSAL client watched at the network: the one that redeems a code tells whether the code ever
 * left the process (which decides whether a failed redemption may give its claim back), and with
 * telemetry on, every client that may reach the token endpoint has its requests traced.
 */
import { ConfidentialClientApplication } from '@azure/msal-node';
import type { Configuration, INetworkModule } from '@azure/msal-node';

/** What to watch: each POST as it starts, and the network client itself (telemetry). */
export interface NetworkWatch {
  /** Called (synchronously) before each POST is handed to the network client. */
  onSend?: (() => void) | undefined;
  /** Wraps the network client MSAL built (each request then goes through the wrapper). */
  wrap?: ((inner: INetworkModule) => INetworkModule) | undefined;
}

/**
 * A `ConfidentialClientApplication` whose network client is watched. The only POST of a code
 * redemption is the token request, which carries the code; GETs (discovery, metadata) never do.
 * The network client it wraps is the one MSAL built from the configuration: the app's
 * `system.networkClient` or msal-node's own (which msal-node 7 does not export), so proxies and
 * custom clients behave exactly as without the wrapper.
 */
export class WatchedClient extends ConfidentialClientApplication {
  /**
   * @param configuration - MSAL's configuration, as for `ConfidentialClientApplication`
   * @param watch - what to watch
   */
  constructor(configuration: Configuration, watch: NetworkWatch) {
    super(configuration);
    const built: INetworkModule = this.config.system.networkClient;
    const inner = watch.wrap ? watch.wrap(built) : built;
    const { onSend } = watch;
    this.config.system.networkClient = {
      sendGetRequestAsync: (url, options, timeout) => inner.sendGetRequestAsync(url, options, timeout),
      sendPostRequestAsync: (url, options) => {
        onSend?.();
        return inner.sendPostRequestAsync(url, options);
      },
    };
  }
}
