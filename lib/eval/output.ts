/** Writing predictions: index PNGs and colour renderings. */
export { colourise, overlay } from './render';
export { writePng as writePngFile } from '../data/image-io';
