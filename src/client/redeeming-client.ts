/**
 * The MSAL client that redeems a code, watched at the network: it tells whether the code ever
 * left the process, which decides whether a failed redemption may give its claim back.
 */
import { ConfidentialClientApplication } from '@azure/msal-node';
import type { Configuration, INetworkModule } from '@azure/msal-node';

/**
 * A `ConfidentialClientApplication` that calls `onSend` whenever it starts a POST. The only POST
 * of a code redemption is the token request, which carries the code; GETs (discovery, metadata)
 * never do. The network client it wraps is the one MSAL built from the configuration: the app's
 * `system.networkClient` or msal-node's own (which msal-node 7 does not export), so proxies and
 * custom clients behave exactly as without the wrapper.
 */
export class RedeemingClient extends ConfidentialClientApplication {
  /**
   * @param configuration - MSAL's configuration, as for `ConfidentialClientApplication`
   * @param onSend - called (synchronously) before each POST is handed to the network client
   */
  constructor(configuration: Configuration, onSend: () => void) {
    super(configuration);
    const inner: INetworkModule = this.config.system.networkClient;
    this.config.system.networkClient = {
      sendGetRequestAsync: (url, options, timeout) => inner.sendGetRequestAsync(url, options, timeout),
      sendPostRequestAsync: (url, options) => {
        onSend();
        return inner.sendPostRequestAsync(url, options);
      },
    };
  }
}
