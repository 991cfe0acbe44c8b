// Side-by-side figures: token-endpoint calls, AADSTS54005 failures, successes, latency.
import type { FakeEntraId } from '../src/testing';
import type { Side } from './attempt';
import { CAUSES } from './traffic';
import type { Cause, SignInRecord } from './traffic';

export interface SideSummary {
  callbacks: number;
  tokenEndpointCalls: number;
  aadsts54005: number;
  successes: number;
  otherErrors: Record<string, number>;
  latencyMs: { p50: number; p99: number };
  byCause: Record<Cause, { callbacks: number; tokenEndpointCalls: number; aadsts54005: number; successes: number }>;
}

function percentile(sorted: number[], fraction: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil(fraction * sorted.length) - 1)]!;
}

export function summarize(records: SignInRecord[], entra: FakeEntraId): SideSummary {
  const attempts = records.flatMap((record) => record.attempts);
  const latencies = attempts.map((attempt) => attempt.latencyMs).sort((a, b) => a - b);
  const otherErrors: Record<string, number> = {};
  for (const attempt of attempts)
    if (!attempt.ok && !attempt.codeAlreadyRedeemed) otherErrors[attempt.error!] = (otherErrors[attempt.error!] ?? 0) + 1;
  const byCause = Object.fromEntries(
    (Object.keys(CAUSES) as Cause[]).map((cause) => {
      const mine = records.filter((record) => record.cause === cause);
      const tries = mine.flatMap((record) => record.attempts);
      return [
        cause,
        {
          callbacks: tries.length,
          tokenEndpointCalls: mine.reduce((sum, record) => sum + entra.tokenCallCount({ code: record.code }), 0),
          aadsts54005: tries.filter((attempt) => attempt.codeAlreadyRedeemed).length,
          successes: tries.filter((attempt) => attempt.ok).length,
        },
      ];
    }),
  ) as SideSummary['byCause'];
  return {
    callbacks: attempts.length,
    tokenEndpointCalls: records.reduce((sum, record) => sum + entra.tokenCallCount({ code: record.code }), 0),
    aadsts54005: attempts.filter((attempt) => attempt.codeAlreadyRedeemed).length,
    successes: attempts.filter((attempt) => attempt.ok).length,
    otherErrors,
    latencyMs: { p50: round(percentile(latencies, 0.5)), p99: round(percentile(latencies, 0.99)) },
    byCause,
  };
}

const round = (value: number): number => Math.round(value * 10) / 10;

export function renderTable(summaries: Record<Side, SideSummary>): string {
  const ours = summaries.ours;
  const plain = summaries.plain;
  const errors = (summary: SideSummary): string =>
    Object.entries(summary.otherErrors)
      .map(([code, count]) => `${count} ${code}`)
      .join(', ') || '0';
  const rows: [string, string, string][] = [
    ['', 'msal-distributed-cache', 'plain ConfidentialClientApplication'],
    ['callbacks (with duplicates)', String(ours.callbacks), String(plain.callbacks)],
    ['token-endpoint calls', String(ours.tokenEndpointCalls), String(plain.tokenEndpointCalls)],
    ['AADSTS54005 failures', String(ours.aadsts54005), String(plain.aadsts54005)],
    ['callbacks that got tokens', String(ours.successes), String(plain.successes)],
    ['other errors', errors(ours), errors(plain)],
    ['latency p50 / p99 (ms)', `${ours.latencyMs.p50} / ${ours.latencyMs.p99}`, `${plain.latencyMs.p50} / ${plain.latencyMs.p99}`],
  ];
  const causeRows: [string, string, string][] = (Object.keys(CAUSES) as Cause[]).map((cause) => {
    const a = ours.byCause[cause];
    const b = plain.byCause[cause];
    return [
      `  ${cause}`,
      `${a.tokenEndpointCalls} calls, ${a.aadsts54005} x 54005, ${a.successes}/${a.callbacks} ok`,
      `${b.tokenEndpointCalls} calls, ${b.aadsts54005} x 54005, ${b.successes}/${b.callbacks} ok`,
    ];
  });
  const all = [...rows, ['by cause:', '', ''] as [string, string, string], ...causeRows];
  const widths = [0, 1, 2].map((column) => Math.max(...all.map((row) => row[column]!.length)));
  return all
    .map((row) =>
      row
        .map((cell, column) => cell.padEnd(widths[column]!))
        .join('   ')
        .trimEnd(),
    )
    .join('\n');
}
