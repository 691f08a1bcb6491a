import { ConfigError, Model, parseNetConfig } from '../../lib';

// The net section of the reference's VOC and Cityscapes configs (u2pl-method.md §15.3).
const vocNet = {
  num_classes: 21, sync_bn: true, ema_decay: 0.99,
  encoder: {
    type: 'u2pl.models.resnet.resnet101',
    kwargs: { multi_grid: true, zero_init_residual: true, fpn: true, replace_stride_with_dilation: [false, true, true] },
  },
  decoder: { type: 'u2pl.models.decoder.dec_deeplabv3_plus', kwargs: { inner_planes: 256, dilations: [12, 24, 36] } },
};

describe('net section', () => {
  test('the reference VOC section gives R101 deep stem, multi-grid, OS8, rep head', () => {
    const net = parseNetConfig(vocNet);
    expect(net.model).toMatchObject({
      depth: 101, deepStem: true, multiGrid: true, zeroInitResidual: true, replaceStrideWithDilation: [false, true, true],
      numClasses: 21, repHead: true, aux: false, dilations: [12, 24, 36], innerPlanes: 256,
    });
    expect(net.emaDecay).toBe(0.99);
  });

  test('aux_loss enables the auxiliary head with its weight', () => {
    const net = parseNetConfig({ ...vocNet, num_classes: 19, aux_loss: { aux_plane: 1024, loss_weight: 0.4 } });
    expect(net.model.aux).toBe(true);
    expect(net.model.auxPlanes).toBe(1024);
    expect(net.auxLossWeight).toBe(0.4);
  });

  test.each(([
    [{ ...vocNet, colour: 1 }, 'net.colour: unknown key'],
    [{ ...vocNet, num_classes: 0 }, 'net.num_classes: expected an integer >= 1, got 0'],
    [{ ...vocNet, num_classes: '21' }, "net.num_classes: expected an integer, got the string '21'"],
    [{ ...vocNet, encoder: { type: 'resnet152' } }, "net.encoder.type: unknown encoder 'resnet152'"],
    [{ ...vocNet, encoder: { type: 'resnet50', kwargs: { multigrid: true } } }, 'net.encoder.kwargs.multigrid: unknown key'],
    [{ ...vocNet, encoder: { type: 'resnet50', kwargs: { replace_stride_with_dilation: [true, true] } } }, 'net.encoder.kwargs.replace_stride_with_dilation: expected 3 booleans'],
    [{ ...vocNet, encoder: { type: 'resnet50', kwargs: { fpn: false } } }, 'net.encoder.kwargs.fpn: must be true'],
    [{ ...vocNet, decoder: { type: 'dec_deeplabv3' } }, "net.decoder.type: unknown decoder 'dec_deeplabv3'"],
    [{ ...vocNet, decoder: { kwargs: { rep_head: 'yes' } } }, "net.decoder.kwargs.rep_head: expected true or false, got the string 'yes'"],
    [{ ...vocNet, aux_loss: { aux_plane: 1024, weight: 0.4 } }, 'net.aux_loss.weight: unknown key'],
    [{ ...vocNet, ema_decay: 1.5 }, 'net.ema_decay: expected a number in [0, 1], got 1.5'],
    [{ encoder: {} }, 'net.num_classes: required'],
    [[1, 2], 'net: expected a mapping'],
  ] as [unknown, string][]).map(([net, message]) => [message, net]))('rejected: %s', (message, net) => {
    expect(() => parseNetConfig(net)).toThrow(ConfigError);
    expect(() => parseNetConfig(net)).toThrow(message);
  });

  test('an aux_plane that does not match layer3 is an error naming the key', () => {
    expect(() => Model.fromNetConfig({ num_classes: 2, encoder: { type: 'resnet18' }, aux_loss: { aux_plane: 1024 } })).toThrow(
      'net.aux_loss.aux_plane is 1024 but layer3 of this encoder has 256 channels',
    );
  });
});
