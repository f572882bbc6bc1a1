// Writes the test workspace's images: node make-images.js DIR  (uses sharp from the checkout's node_modules)
'use strict';
const fs = require('fs');
const path = require('path');
const sharp = require('sharp');
const dir = process.argv[2];
fs.mkdirSync(dir, { recursive: true });

function shapes(w, h) {
  const px = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const i = (y * w + x) * 3;
    let c = [235, 240, 245 - Math.round((y / h) * 40)];
    if ((x - w * 0.3) ** 2 + (y - h * 0.35) ** 2 < (h * 0.18) ** 2) c = [220, 40, 40];
    else if (x > w * 0.55 && x < w * 0.85 && y > h * 0.2 && y < h * 0.6) c = [40, 90, 210];
    else if (y > h * 0.7 && Math.abs(x - w * 0.5) < (y - h * 0.7) * 1.2) c = [40, 170, 70];
    px.set(c, i);
  }
  return sharp(px, { raw: { width: w, height: h, channels: 3 } });
}

(async () => {
  await shapes(800, 600).png().toFile(path.join(dir, 'shapes.png'));
  await shapes(256, 256).png().toFile(path.join(dir, 'small.png'));
  await shapes(640, 480).jpeg({ quality: 85 }).toFile(path.join(dir, 'photo.jpg'));
  // A PNG signature and a truncated header: not decodable.
  const good = fs.readFileSync(path.join(dir, 'small.png'));
  fs.writeFileSync(path.join(dir, 'corrupt.png'), Buffer.concat([good.subarray(0, 40), Buffer.from('this is not image data')]));
  fs.writeFileSync(path.join(dir, 'notes.txt'), 'A text file: the explorer offers no "Ask About Image" here.\n');
  console.log('test images in', dir);
})().catch((e) => { console.error(e); process.exit(1); });
