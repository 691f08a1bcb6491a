/**
 * The `net` section of a reference-style config (u2pl-method.md §15.3) -> model options.
 */
import { ConfigError, bool, int, isBool, isPositiveInt, num, onlyKeys, section, str, tuple } from './errors';

/** Options of the native network (native/model/segmentation_model.h). */
export interface ModelOptions {
  depth: 18 | 34 | 50 | 101;
  /** Reference deep stem (3x3 64-64-128) or the torchvision 7x7 stem. */
  deepStem: boolean;
  replaceStrideWithDilation: [boolean, boolean, boolean];
  multiGrid: boolean;
  zeroInitResidual: boolean;
  numClasses: number;
  innerPlanes: number;
  /** Port-only (net.decoder.kwargs.head_planes): decoder width, 256 in U2PL. */
  headPlanes: number;
  dilations: [number, number, number];
  repHead: boolean;
  aux: boolean;
  auxPlanes: number;
  dropout: number;
  /** "cpu" or "cuda", "cuda:1", ... */
  device: string;
  /** Seeds LibTorch's RNG before the weights are initialised. */
  seed?: number;
}

/** What the net section says beyond the architecture. */
export interface NetConfig {
  model: ModelOptions;
  syncBn: boolean;
  emaDecay?: number;
  auxLossWeight?: number;
  /** ImageNet checkpoint for the encoder (port-only key net.encoder.pretrained). */
  pretrained?: string;
}

const ENCODERS: Record<string, 18 | 34 | 50 | 101> = { resnet18: 18, resnet34: 34, resnet50: 50, resnet101: 101 };
const DECODERS = ['dec_deeplabv3_plus', 'deeplabv3plus', 'deeplabv3_plus'];

/** The last dotted component: the reference writes types as Python paths (u2pl.models.resnet.resnet101). */
function shortName(type: string): string {
  return type.slice(type.lastIndexOf('.') + 1);
}

export const defaultModelOptions: ModelOptions = {
  depth: 101, deepStem: true, replaceStrideWithDilation: [false, true, true], multiGrid: false, zeroInitResidual: false,
  numClasses: 21, innerPlanes: 256, headPlanes: 256, dilations: [12, 24, 36], repHead: true, aux: false, auxPlanes: 0, dropout: 0.1, device: 'cpu',
};

export function parseNetConfig(value: unknown, key = 'net'): NetConfig {
  const net = section(value, key);
  onlyKeys(net, ['num_classes', 'sync_bn', 'ema_decay', 'aux_loss', 'encoder', 'decoder', 'device'], key);
  const numClasses = int(net, 'num_classes', undefined, key, 1);

  const encoder = section(net.encoder ?? {}, `${key}.encoder`);
  onlyKeys(encoder, ['type', 'kwargs', 'pretrained'], `${key}.encoder`);
  const encoderType = str(encoder, 'type', 'resnet101', `${key}.encoder`);
  const depth = ENCODERS[shortName(encoderType)];
  if (!depth) throw new ConfigError(`${key}.encoder.type`, `unknown encoder '${encoderType}' (expected one of ${Object.keys(ENCODERS).join(', ')})`);
  const ek = `${key}.encoder.kwargs`;
  const encoderKwargs = section(encoder.kwargs ?? {}, ek);
  onlyKeys(encoderKwargs, ['multi_grid', 'replace_stride_with_dilation', 'fpn', 'zero_init_residual', 'deep_stem'], ek);
  if (encoderKwargs.fpn === false) throw new ConfigError(`${ek}.fpn`, 'must be true: the DeepLabv3+ decoder needs all four stages');
  const replace = tuple(encoderKwargs, 'replace_stride_with_dilation', [false, true, true], ek, 3, isBool, 'booleans') as [boolean, boolean, boolean];
  if (replace[0] && !replace[1]) throw new ConfigError(`${ek}.replace_stride_with_dilation`, 'dilating layer2 but not layer3 is not supported');

  const decoder = section(net.decoder ?? {}, `${key}.decoder`);
  onlyKeys(decoder, ['type', 'kwargs'], `${key}.decoder`);
  const decoderType = str(decoder, 'type', 'dec_deeplabv3_plus', `${key}.decoder`);
  if (!DECODERS.includes(shortName(decoderType))) {
    throw new ConfigError(`${key}.decoder.type`, `unknown decoder '${decoderType}' (expected dec_deeplabv3_plus)`);
  }
  const dk = `${key}.decoder.kwargs`;
  const decoderKwargs = section(decoder.kwargs ?? {}, dk);
  onlyKeys(decoderKwargs, ['inner_planes', 'dilations', 'rep_head', 'sync_bn', 'head_planes'], dk);

  let aux = false;
  let auxPlanes = 0;
  let auxLossWeight: number | undefined;
  if (net.aux_loss !== undefined && net.aux_loss !== null) {
    const ak = `${key}.aux_loss`;
    const auxLoss = section(net.aux_loss, ak);
    onlyKeys(auxLoss, ['aux_plane', 'loss_weight'], ak);
    aux = true;
    auxPlanes = int(auxLoss, 'aux_plane', 0, ak, 1);
    auxLossWeight = num(auxLoss, 'loss_weight', 0.4, ak, 0);
  }
  const emaDecay = net.ema_decay === undefined ? undefined : num(net, 'ema_decay', undefined, key, 0, 1);
  const pretrained = encoder.pretrained === undefined || encoder.pretrained === '' ? undefined : str(encoder, 'pretrained', undefined, `${key}.encoder`);

  return {
    model: {
      depth,
      deepStem: bool(encoderKwargs, 'deep_stem', true, ek),
      replaceStrideWithDilation: replace,
      multiGrid: bool(encoderKwargs, 'multi_grid', false, ek),
      zeroInitResidual: bool(encoderKwargs, 'zero_init_residual', false, ek),
      numClasses,
      innerPlanes: int(decoderKwargs, 'inner_planes', 256, dk, 1),
      headPlanes: int(decoderKwargs, 'head_planes', 256, dk, 1),
      dilations: tuple(decoderKwargs, 'dilations', [12, 24, 36], dk, 3, isPositiveInt, 'positive integers') as [number, number, number],
      repHead: bool(decoderKwargs, 'rep_head', true, dk),
      aux,
      auxPlanes,
      dropout: 0.1,
      device: str(net, 'device', 'cpu', key),
    },
    syncBn: bool(net, 'sync_bn', true, key),
    emaDecay,
    auxLossWeight,
    pretrained,
  };
}
