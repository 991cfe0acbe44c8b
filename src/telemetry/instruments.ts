/**
 * The instruments of one meter: every metric of docs/observability.md but the L1's observable
 * ones (made per cache that has an L1, see Telemetry.observeL1). Durations are in seconds, with
 * buckets from 50 µs (a silent call answered from L1) to 30 s (a token request that times out).
 */
import type { Counter, Histogram, Meter } from '@opentelemetry/api';
import { METRIC } from './names';

const SECONDS_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export interface Instruments {
  operationDuration: Histogram;
  lockTimeouts: Counter;
  cacheLookups: Counter;
  cacheDuration: Histogram;
  tokenRequests: Counter;
  tokenRequestDuration: Histogram;
  redemptions: Counter;
  lockWaitDuration: Histogram;
  storeErrors: Counter;
  l1Invalidations: Counter;
  flights: Counter;
  flightWaitDuration: Histogram;
}

export function instrumentsOf(meter: Meter): Instruments {
  const seconds = (name: string, description: string): Histogram =>
    meter.createHistogram(name, { unit: 's', description, advice: { explicitBucketBoundaries: SECONDS_BUCKETS } });
  const counter = (name: string, unit: string, description: string): Counter => meter.createCounter(name, { unit, description });
  return {
    operationDuration: seconds(METRIC.operationDuration, 'Duration of the public operations of DistributedClientApplication'),
    lockTimeouts: counter(METRIC.lockTimeouts, '{timeout}', 'Operations that failed with ERR_LOCK_TIMEOUT'),
    cacheLookups: counter(METRIC.cacheLookups, '{lookup}', 'Partition reads, by where they were answered: L1, the store, or a miss'),
    cacheDuration: seconds(METRIC.cacheDuration, 'Duration of partition reads and writes'),
    tokenRequests: counter(METRIC.tokenRequests, '{request}', 'Requests to the token endpoint, by grant type and result'),
    tokenRequestDuration: seconds(METRIC.tokenRequestDuration, 'Duration of requests to the token endpoint'),
    redemptions: counter(METRIC.redemptions, '{redemption}', 'Authorization-code redemptions and duplicates, by outcome'),
    lockWaitDuration: seconds(METRIC.lockWaitDuration, 'Waits for another caller in the lock store (redeem-once, single flight)'),
    storeErrors: counter(METRIC.storeErrors, '{error}', 'Token-store and lock-store failures, by operation and what the policy did'),
    l1Invalidations: counter(METRIC.l1Invalidations, '{invalidation}', 'Drops of what the in-process L1 held, by reason'),
    flights: counter(METRIC.flights, '{flight}', 'Fleet single flight: requests held, waited for, taken over or sent uncoordinated'),
    flightWaitDuration: seconds(METRIC.flightWaitDuration, "Waits for another caller's token request (single flight)"),
  };
}
