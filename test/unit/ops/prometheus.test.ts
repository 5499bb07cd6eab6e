/**
 * The Prometheus text format writer (ops/prometheus.ts): escaping and values, read back by the
 * reference parser (Debian's python3-prometheus-client; skipped, naming it, when missing).
 */
import { expect } from 'chai';
import { Exposition, escapeHelp, escapeLabelValue, formatLabels, formatValue } from '../../../src/ops/prometheus.js';
import { parseExposition, prometheusParserMissing, sampleValue } from '../../integration/ops-support.js';

describe('Prometheus exposition', () => {
  it('escapes label values and HELP text as the format says', () => {
    expect(escapeLabelValue('a\\b"c\nd')).to.equal('a\\\\b\\"c\\nd');
    expect(escapeHelp('x\\y\nz "q"')).to.equal('x\\\\y\\nz "q"');
    expect(formatLabels([])).to.equal('');
    expect(
      formatLabels([
        ['a', '1'],
        ['b', 'x"y'],
      ]),
    ).to.equal('{a="1",b="x\\"y"}');
    expect(formatValue(Number.POSITIVE_INFINITY)).to.equal('+Inf');
    expect(formatValue(Number.NEGATIVE_INFINITY)).to.equal('-Inf');
    expect(formatValue(Number.NaN)).to.equal('NaN');
    expect(formatValue(0.005)).to.equal('0.005');
  });

  it('refuses a bad name and a family declared twice', () => {
    const x = new Exposition().family('a_total', 'counter', 'x');
    expect(() => x.family('a_total', 'counter', 'x')).to.throw(/declared twice/);
    expect(() => x.family('1bad', 'gauge', 'x')).to.throw(/bad metric name/);
  });

  it('what it writes, the reference parser reads back, odd labels and values included', function () {
    const missing = prometheusParserMissing();
    if (missing !== undefined) {
      console.log(`      skipped: ${missing}`);
      this.skip();
    }
    const x = new Exposition()
      .family('t_requests_total', 'counter', 'Requests.\nSecond line \\ with a backslash.')
      .sample(
        't_requests_total',
        [
          ['pool', '/srv/app/tasks "hash".js'],
          ['w', 'a\\b\nc'],
        ],
        42,
      )
      .family('t_ratio', 'gauge', 'A ratio.')
      .sample('t_ratio', [], Number.POSITIVE_INFINITY)
      .family('t_seconds', 'histogram', 'Latency.')
      .sample('t_seconds_bucket', [['le', '0.005']], 3)
      .sample('t_seconds_bucket', [['le', '+Inf']], 5)
      .sample('t_seconds_sum', [], 1.25)
      .sample('t_seconds_count', [], 5);
    const text = x.text();
    expect(text.endsWith('\n')).to.equal(true);
    const families = parseExposition(text);
    expect(families.map((f) => [f.name, f.type])).to.deep.equal([
      ['t_requests', 'counter'],
      ['t_ratio', 'gauge'],
      ['t_seconds', 'histogram'],
    ]);
    expect(sampleValue(families, 't_requests_total', { pool: '/srv/app/tasks "hash".js', w: 'a\\b\nc' })).to.equal(42);
    expect(sampleValue(families, 't_ratio')).to.equal('inf' as unknown as number);
    expect(sampleValue(families, 't_seconds_bucket', { le: '+Inf' })).to.equal(5);
    expect(sampleValue(families, 't_seconds_count')).to.equal(5);
  });
});
