/**
 * Background batch loading: decoding (sharp, fast-png) and augmentation (native, libuv pool) run
 * ahead of the training step with a bounded number of batches in flight. Every sample's random
 * draw comes from (seed, epoch, step, slot), so results do not depend on timing or concurrency.
 */
import { AugmentConfig, augment, drawAugment, drawStrong, StrongAugmentConfig, strongView } from './augment';
import { Sample } from './datasets';
import { checkLabelValues, DataError, LabelOptions, readImage, readLabel } from './image-io';
import { deriveSeed, Random } from './random';

export interface Batch {
  /** B x 3 x H x W normalised images. */
  images: Float32Array;
  /** B x H x W labels (when loaded with labels). */
  labels?: Uint8Array;
  size: number;
  height: number;
  width: number;
  ids: string[];
  /** Wall time spent producing this batch (decode + augment). */
  seconds: number;
  /** With LoaderOptions.partners: each image's copy-paste partner (zeros where it has none). */
  partnerImages?: Float32Array;
  partnerLabels?: Uint8Array;
  hasPartner?: boolean[];
  /** With LoaderOptions.strong: each image's strong view (B x 3 x H x W), same geometry as `images`. */
  strongImages?: Float32Array;
}

export interface LoaderOptions {
  samples: Sample[];
  augment: AugmentConfig;
  train: boolean;
  withLabels: boolean;
  labelOptions: LabelOptions;
  classes: number;
  ignoreLabel: number;
  seed: number;
  /** Batches loaded ahead of the consumer (default 2). */
  prefetch?: number;
  /** Keep decoded images in memory up to this many bytes (default 0: decode every time). */
  cacheBytes?: number;
  /**
   * Called once per unreadable file when such files are to be skipped (dataset.skip_unreadable):
   * the next readable sample of the list takes its place. Without it a bad file is an error.
   */
  onSkip?: (error: DataError) => void;
  /**
   * AEL copy-paste (u2pl-ael-method.md A2.2): with probability 1 - prob each sample gets a partner,
   * a uniformly drawn sample of the same list under `augment` (its own scale range), same crop size.
   */
  partners?: { prob: number; augment: AugmentConfig };
  /** Also make each image's strong view (photometric, after the augmentation), from its own draw. */
  strong?: StrongAugmentConfig;
}

interface Decoded {
  image: Uint8Array;
  label?: Uint8Array;
  height: number;
  width: number;
}

export class BatchLoader {
  private readonly cache = new Map<number, Decoded>();
  private cachedBytes = 0;
  private readonly unreadable = new Set<number>();

  constructor(readonly options: LoaderOptions) {
    if (options.samples.length === 0) throw new Error('the dataset is empty');
  }

  get length(): number {
    return this.options.samples.length;
  }

  /**
   * Decodes sample `index`, or with onSkip the first readable one after it (in list order), so
   * that a run with a few bad files goes on; the same files are skipped the same way every time.
   */
  private async decodeOrSkip(index: number): Promise<Decoded> {
    const n = this.options.samples.length;
    for (let k = 0; k < n; k++) {
      const i = (index + k) % n;
      if (this.unreadable.has(i)) continue;
      try {
        return await this.decode(i);
      } catch (e) {
        if (!(e instanceof DataError) || !this.options.onSkip) throw e;
        this.unreadable.add(i);
        this.options.onSkip(e);
      }
    }
    throw new DataError(this.options.samples[index].image, 'no readable sample is left in this list');
  }

  /** Decodes and validates one sample (image, and label when requested). */
  async decode(index: number): Promise<Decoded> {
    const hit = this.cache.get(index);
    if (hit) return hit;
    const o = this.options;
    const sample = o.samples[index];
    const [image, label] = await Promise.all([
      readImage(sample.image),
      o.withLabels ? readLabel(sample.label, o.labelOptions) : Promise.resolve(undefined),
    ]);
    if (label) {
      if (label.width !== image.width || label.height !== image.height) {
        throw new DataError(sample.label, `label is ${label.width}x${label.height} but its image ${sample.image} is ${image.width}x${image.height}`);
      }
      checkLabelValues(sample.label, label, o.classes, o.ignoreLabel);
    }
    const decoded = { image: image.data, label: label?.data, height: image.height, width: image.width };
    const bytes = image.data.length + (label?.data.length ?? 0);
    if (this.cachedBytes + bytes <= (o.cacheBytes ?? 0)) {
      this.cache.set(index, decoded);
      this.cachedBytes += bytes;
    }
    return decoded;
  }

  /**
   * One batch; `key` (epoch, step) seeds the augmentation. Without a crop (whole-image validation)
   * every image of a batch must come out at the same size.
   */
  async loadBatch(indices: number[], epoch: number, step: number): Promise<Batch> {
    const t0 = process.hrtime.bigint();
    const o = this.options;
    const outputs = await Promise.all(indices.map(async (index, slot) => {
      const d = await this.decodeOrSkip(index);
      const rng = new Random(deriveSeed(o.seed, 'augment', epoch, step, slot, index));
      const draw = drawAugment(rng, d.height, d.width, o.augment, o.train);
      const out = await augment(d.image, d.label, d.height, d.width, draw, o.augment);
      // The strong view draws from its own stream, so the weak views are those of a run without it.
      const strong = o.strong ? await strongView(out.image, draw.cropHeight, draw.cropWidth,
        drawStrong(new Random(deriveSeed(o.seed, 'strong', epoch, step, slot, index)), o.strong), o.augment) : undefined;
      return { draw, out, strong, partner: await this.partner(index, epoch, step, slot) };
    }));
    const ch = outputs[0].draw.cropHeight;
    const cw = outputs[0].draw.cropWidth;
    const plane = ch * cw;
    const images = new Float32Array(indices.length * 3 * plane);
    const labels = o.withLabels ? new Uint8Array(indices.length * plane) : undefined;
    const partnerImages = o.partners ? new Float32Array(indices.length * 3 * plane) : undefined;
    const partnerLabels = o.partners ? new Uint8Array(indices.length * plane) : undefined;
    const strongImages = o.strong ? new Float32Array(indices.length * 3 * plane) : undefined;
    outputs.forEach(({ draw, out, strong, partner }, slot) => {
      if (draw.cropHeight !== ch || draw.cropWidth !== cw) {
        const s = o.samples[indices[slot]];
        throw new DataError(s.image, `comes out at ${draw.cropWidth}x${draw.cropHeight} where the batch's first image is ${cw}x${ch}: without a crop, whole images of different sizes go one per batch`);
      }
      images.set(out.image, slot * 3 * plane);
      if (strongImages && strong) strongImages.set(strong, slot * 3 * plane);
      if (labels && out.label) labels.set(out.label, slot * plane);
      if (partner && partnerImages && partnerLabels) {
        partnerImages.set(partner.image, slot * 3 * plane);
        if (partner.label) partnerLabels.set(partner.label, slot * plane);
      }
    });
    return {
      images, labels, size: indices.length, height: ch, width: cw,
      ...(o.partners ? { partnerImages, partnerLabels, hasPartner: outputs.map((x) => x.partner !== undefined) } : {}),
      ...(strongImages ? { strongImages } : {}),
      ids: indices.map((i) => o.samples[i].id),
      seconds: Number(process.hrtime.bigint() - t0) / 1e9,
    };
  }

  /** The copy-paste partner of one sample, or undefined (no partners, or none drawn). */
  private async partner(index: number, epoch: number, step: number, slot: number): Promise<{ image: Float32Array; label?: Uint8Array } | undefined> {
    const o = this.options;
    if (!o.partners) return undefined;
    const rng = new Random(deriveSeed(o.seed, 'partner', epoch, step, slot, index));
    if (!(rng.next() > o.partners.prob)) return undefined;  // the reference loads a partner when u > prob
    const j = rng.int(0, o.samples.length - 1);
    const d = await this.decodeOrSkip(j);
    const draw = drawAugment(rng, d.height, d.width, o.partners.augment, true);
    return augment(d.image, d.label, d.height, d.width, draw, o.partners.augment);
  }

  /** Yields the batches of `plan` in order, keeping up to `prefetch` of them loading ahead. */
  async *iterate(plan: number[][], epoch: number, startStep = 0): AsyncGenerator<Batch> {
    const ahead = Math.max(1, this.options.prefetch ?? 2);
    const pending: Promise<Batch>[] = [];
    let next = startStep;
    const fill = () => {
      while (pending.length < ahead && next < plan.length) {
        const p = this.loadBatch(plan[next], epoch, next);
        p.catch(() => undefined); // surfaced when awaited below
        pending.push(p);
        next++;
      }
    };
    fill();
    while (pending.length > 0) {
      const batch = await (pending.shift() as Promise<Batch>);
      fill();
      yield batch;
    }
  }
}
