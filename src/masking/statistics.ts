/**
 * The planner's statistics keep samples of real column values (most common values, histogram
 * bounds), readable through pg_stats and pg_statistic by the table owner the broker connects as.
 * `SELECT most_common_vals FROM pg_stats` would hand classified values back in clear, so when
 * masking is configured at all, those value columns are classified as secrets too.
 */
const SAMPLE_COLUMNS = [
  'pg_catalog.pg_statistic.stavalues1',
  'pg_catalog.pg_statistic.stavalues2',
  'pg_catalog.pg_statistic.stavalues3',
  'pg_catalog.pg_statistic.stavalues4',
  'pg_catalog.pg_statistic.stavalues5',
  'pg_catalog.pg_stats.most_common_vals',
  'pg_catalog.pg_stats.histogram_bounds',
  'pg_catalog.pg_stats.most_common_elems',
  'pg_catalog.pg_statistic_ext_data.stxdmcv',
  'pg_catalog.pg_statistic_ext_data.stxdexpr',
  'pg_catalog.pg_stats_ext.most_common_vals',
  'pg_catalog.pg_stats_ext_exprs.most_common_vals',
  'pg_catalog.pg_stats_ext_exprs.histogram_bounds',
  'pg_catalog.pg_stats_ext_exprs.most_common_elems',
] as const;

/** The raw `masking:` section with the statistics samples classified, when it classifies anything. */
export function withStatisticsSamples(raw: unknown): unknown {
  if (raw === null || typeof raw !== 'object') return raw;
  const m = raw as { columns?: Record<string, unknown> };
  if (!m.columns || Object.keys(m.columns).length === 0) return raw;
  const columns: Record<string, unknown> = { ...m.columns };
  for (const c of SAMPLE_COLUMNS) columns[c] ??= { class: 'secret', function: 'redact' };
  return { ...m, columns };
}
