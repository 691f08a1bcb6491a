"""U2PL's DeepLabv3+ written with plain torch.nn, following the reference implementation
(u2pl/models/resnet.py, decoder.py, model_helper.py). Used as an independent construction in tests
(state-dict names, shapes, parameter counts) and as the Python side of the bench."""
import torch
import torch.nn as nn
import torch.nn.functional as F


def conv3x3(i, o, stride=1, dilation=1):
    return nn.Conv2d(i, o, 3, stride=stride, padding=dilation, dilation=dilation, bias=False)


def conv1x1(i, o, stride=1):
    return nn.Conv2d(i, o, 1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None, dilation=1):
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride, dilation)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes, 1, dilation)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = self.downsample(x) if self.downsample is not None else x
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None, dilation=1):
        super().__init__()
        self.conv1 = conv1x1(inplanes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride, dilation)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, planes * 4)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = self.downsample(x) if self.downsample is not None else x
        return self.relu(out + identity)


class ResNet(nn.Module):
    def __init__(self, block, layers, replace_stride_with_dilation=(False, True, True), multi_grid=False, deep_stem=True):
        super().__init__()
        self.dilation = 1
        if deep_stem:
            self.inplanes = 128
            self.conv1 = nn.Sequential(conv3x3(3, 64, 2), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
                                       conv3x3(64, 64), nn.BatchNorm2d(64), nn.ReLU(inplace=True), conv3x3(64, 128))
            self.maxpool = nn.MaxPool2d(3, 2, 1, ceil_mode=True)
        else:
            self.inplanes = 64
            self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.bn1 = nn.BatchNorm2d(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], 2, replace_stride_with_dilation[0])
        self.layer3 = self._make_layer(block, 256, layers[2], 2, replace_stride_with_dilation[1])
        self.layer4 = self._make_layer(block, 512, layers[3], 2, replace_stride_with_dilation[2], multi_grid)

    def _make_layer(self, block, planes, blocks, stride=1, dilate=False, multi_grid=False):
        downsample = None
        previous_dilation = self.dilation
        if dilate:
            self.dilation *= stride
            stride = 1
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(conv1x1(self.inplanes, planes * block.expansion, stride),
                                       nn.BatchNorm2d(planes * block.expansion))
        grids = [2, 2, 4] if multi_grid else [1] * blocks
        layers = [block(self.inplanes, planes, stride, downsample, previous_dilation * grids[0])]
        self.inplanes = planes * block.expansion
        for i in range(1, blocks):
            layers.append(block(self.inplanes, planes, dilation=self.dilation * grids[i]))
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x1 = self.layer1(x)
        x2 = self.layer2(x1)
        x3 = self.layer3(x2)
        x4 = self.layer4(x3)
        return x1, x2, x3, x4


class ASPP(nn.Module):
    def __init__(self, in_planes, inner_planes=256, dilations=(12, 24, 36)):
        super().__init__()
        self.conv1 = nn.Sequential(nn.AdaptiveAvgPool2d((1, 1)), nn.Conv2d(in_planes, inner_planes, 1, bias=False),
                                   nn.BatchNorm2d(inner_planes), nn.ReLU(inplace=True))
        self.conv2 = nn.Sequential(nn.Conv2d(in_planes, inner_planes, 1, bias=False), nn.BatchNorm2d(inner_planes), nn.ReLU(inplace=True))
        self.conv3, self.conv4, self.conv5 = [
            nn.Sequential(nn.Conv2d(in_planes, inner_planes, 3, padding=d, dilation=d, bias=False),
                          nn.BatchNorm2d(inner_planes), nn.ReLU(inplace=True)) for d in dilations]
        self.out_planes = 5 * inner_planes

    def forward(self, x):
        h, w = x.shape[-2:]
        feat1 = F.interpolate(self.conv1(x), size=(h, w), mode="bilinear", align_corners=True)
        return torch.cat((feat1, self.conv2(x), self.conv3(x), self.conv4(x), self.conv5(x)), 1)


def pixel_head(out_planes):
    return nn.Sequential(nn.Conv2d(512, 256, 3, padding=1, bias=True), nn.BatchNorm2d(256), nn.ReLU(inplace=True), nn.Dropout2d(0.1),
                         nn.Conv2d(256, 256, 3, padding=1, bias=True), nn.BatchNorm2d(256), nn.ReLU(inplace=True), nn.Dropout2d(0.1),
                         nn.Conv2d(256, out_planes, 1, bias=True))


class Decoder(nn.Module):
    def __init__(self, in_planes, low_planes, num_classes, rep_head=True, dilations=(12, 24, 36)):
        super().__init__()
        self.rep_head = rep_head
        self.low_conv = nn.Sequential(nn.Conv2d(low_planes, 256, 1), nn.BatchNorm2d(256), nn.ReLU(inplace=True))
        self.aspp = ASPP(in_planes, dilations=dilations)
        self.head = nn.Sequential(nn.Conv2d(self.aspp.out_planes, 256, 3, padding=1, bias=False), nn.BatchNorm2d(256),
                                  nn.ReLU(inplace=True), nn.Dropout2d(0.1))
        self.classifier = pixel_head(num_classes)
        if rep_head:
            self.representation = pixel_head(256)

    def forward(self, x1, x4):
        aspp_out = self.head(self.aspp(x4))
        low = self.low_conv(x1)
        aspp_out = F.interpolate(aspp_out, size=low.shape[-2:], mode="bilinear", align_corners=True)
        f = torch.cat((low, aspp_out), 1)
        out = {"pred": self.classifier(f)}
        if self.rep_head:
            out["rep"] = self.representation(f)
        return out


class Aux(nn.Module):
    def __init__(self, in_planes, num_classes):
        super().__init__()
        self.aux = nn.Sequential(nn.Conv2d(in_planes, 256, 3, padding=1), nn.BatchNorm2d(256), nn.ReLU(inplace=True),
                                 nn.Dropout2d(0.1), nn.Conv2d(256, num_classes, 1))

    def forward(self, x):
        return self.aux(x)


SPECS = {18: (BasicBlock, [2, 2, 2, 2]), 34: (BasicBlock, [3, 4, 6, 3]), 50: (Bottleneck, [3, 4, 6, 3]), 101: (Bottleneck, [3, 4, 23, 3])}


class Model(nn.Module):
    def __init__(self, depth=101, num_classes=21, rep_head=True, aux=False, deep_stem=True,
                 replace_stride_with_dilation=(False, True, True), multi_grid=False, dilations=(12, 24, 36)):
        super().__init__()
        block, layers = SPECS[depth]
        self.encoder = ResNet(block, layers, replace_stride_with_dilation, multi_grid, deep_stem)
        e = block.expansion
        self.decoder = Decoder(512 * e, 64 * e, num_classes, rep_head, dilations)
        if aux:
            self.auxor = Aux(256 * e, num_classes)

    def forward(self, x):
        x1, _, x3, x4 = self.encoder(x)
        out = self.decoder(x1, x4)
        if hasattr(self, "auxor"):
            out["aux"] = self.auxor(x3)
        return out


if __name__ == "__main__":
    import json
    import sys
    args = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    m = Model(**args)
    print(json.dumps({"parameters": sum(p.numel() for p in m.parameters()),
                      "state": [[k, list(v.shape)] for k, v in m.state_dict().items()]}))
