import { downsample, renderReport, ReportData } from '../../lib/eval/report';

function run(steps: number): ReportData {
  return {
    title: 'long run',
    steps: Array.from({ length: steps }, (_, k) => ({ global_step: k, loss: 2 / (1 + k / 1000), supervised: 1, unsupervised: 0.5, contrastive: 0.25 })),
    epochs: Array.from({ length: 80 }, (_, e) => ({ epoch: e, miou: 0.5 + e / 1000, iou: [0.5, 0.6] })),
    classNames: ['a', 'b'],
    samples: [],
    summary: { steps },
  };
}

describe('report.html', () => {
  test('a full-length run (200,000 logged steps, 4 loss series) renders, with each curve downsampled', () => {
    const html = renderReport(run(200000));
    const paths = [...html.matchAll(/<path d="([^"]*)"/g)].map((m) => m[1]);
    expect(paths).toHaveLength(5); // 4 losses + mIoU
    for (const d of paths.slice(0, 4)) {
      const points = d.split(/[ML]/).filter(Boolean);
      expect(points.length).toBeGreaterThan(100);
      expect(points.length).toBeLessThanOrEqual(1000);
    }
    // The axis still spans the whole run.
    expect(html).toContain('>199999</text>');
  });

  test('downsampling keeps short series whole and averages long ones per bucket', () => {
    const short: [number, number][] = [[0, 1], [1, 2], [2, 3]];
    expect(downsample(short, 10)).toEqual(short);
    const long: [number, number][] = Array.from({ length: 1000 }, (_, i) => [i, i % 2]);
    const d = downsample(long, 100);
    expect(d).toHaveLength(100);
    for (const [, y] of d) expect(y).toBeCloseTo(0.5, 6);
    expect(d[0][0]).toBeCloseTo(4.5, 6);
  });
});
