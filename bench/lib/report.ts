// What each benchmark returns, and how it is printed.

/** A goal from the project's issue and whether this run met it. */
export interface Goal {
  benchmark: string;
  goal: string;
  measured: string;
  met: boolean;
}

export interface Table {
  title?: string;
  headers: string[];
  rows: string[][];
  /** Leading columns aligned left (text); the others are aligned right (figures). @defaultValue 1 */
  leftColumns?: number;
}

export interface BenchmarkResult {
  /** Stable id (also the key in latest.json). */
  id: string;
  title: string;
  tables: Table[];
  goals: Goal[];
  notes: string[];
  /** Raw figures for latest.json. */
  data: Record<string, unknown>;
  durationMs?: number;
}

export function formatTable(table: Table): string {
  const widths = table.headers.map((header, column) => Math.max(header.length, ...table.rows.map((row) => (row[column] ?? '').length)));
  const line = (cells: string[]): string =>
    cells
      .map((cell, column) => (column < (table.leftColumns ?? 1) ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!)))
      .join('  ')
      .trimEnd();
  const out = [line(table.headers), widths.map((width) => '-'.repeat(width)).join('  '), ...table.rows.map(line)];
  return (table.title ? [table.title, ...out] : out).join('\n');
}

export function printResult(result: BenchmarkResult): void {
  const seconds = result.durationMs === undefined ? '' : ` (${(result.durationMs / 1000).toFixed(1)} s)`;
  console.log(`\n=== ${result.title}${seconds} ===`);
  for (const table of result.tables) console.log(`\n${formatTable(table)}`);
  if (result.goals.length) {
    console.log('');
    for (const goal of result.goals) console.log(`${goal.met ? 'MET   ' : 'MISSED'}  ${goal.goal}: ${goal.measured}`);
  }
  for (const note of result.notes) console.log(`note: ${note}`);
}

export function goalTable(goals: Goal[]): Table {
  return {
    title: 'Goals',
    leftColumns: 4,
    headers: ['benchmark', 'goal', 'measured', 'met'],
    rows: goals.map((goal) => [goal.benchmark, goal.goal, goal.measured, goal.met ? 'yes' : 'NO']),
  };
}
