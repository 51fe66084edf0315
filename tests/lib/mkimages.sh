# tests/lib/mkimages.sh - real test images (sourced): mkimages DIR writes
# photo.jpg (1200x900, q95), oriented.jpg (sRGB ICC profile, EXIF
# orientation RightTop, XMP naming a camera "SecretCam"), alpha.png (16-bit, alpha, zlib 1), anim.gif (3
# frames), pic.webp (q95), scan.tiff, corrupt.jpg (a truncated JPEG),
# notes.jpg (text), big.png (8000x5000 = 40 MP), and each of the images
# again without an extension (noext-*). Uses ImageMagick and libvips's
# command line tools (Debian's imagemagick, libvips-tools).
mkimages() {
	local d=$1 C=/usr/bin/convert f
	mkdir -p "$d"
	$C -size 1200x900 plasma:fractal -seed 4 -quality 95 "$d/photo.jpg"
	$C -size 600x400 gradient:red-blue \( -size 600x400 radial-gradient: \) \
		-alpha off -compose copy_opacity -composite -quality 10 "$d/alpha.png"
	$C -size 200x200 xc:red xc:green xc:blue -loop 0 -set delay 20 "$d/anim.gif"
	$C -size 800x600 plasma:fractal -seed 5 -quality 95 "$d/pic.webp"
	$C -size 400x300 plasma:fractal -seed 6 "$d/scan.tiff"
	vips icc_transform "$d/photo.jpg" "$d/icc.jpg[Q=95]" srgb &&
		$C "$d/icc.jpg" -orient RightTop "$d/icc2.jpg" && rm "$d/icc.jpg"
	# and an XMP packet naming the camera (what strip_metadata removes)
	/usr/bin/python3 - "$d/icc2.jpg" "$d/oriented.jpg" <<'EOP'
import sys
d = open(sys.argv[1], 'rb').read()
x = (b'http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta xmlns:x="adobe:ns:meta/">'
     b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
     b'<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" '
     b'tiff:Make="SecretCam"/></rdf:RDF></x:xmpmeta>')
seg = b'\xff\xe1' + (len(x) + 2).to_bytes(2, 'big') + x
open(sys.argv[2], 'wb').write(d[:2] + seg + d[2:])
EOP
	rm -f "$d/icc2.jpg"
	head -c 30000 "$d/photo.jpg" >"$d/corrupt.jpg"
	echo "just some text, not an image" >"$d/notes.jpg"
	vips sines "$d/s.v" 8000 5000 --hfreq 3 --vfreq 2 &&
		vips linear "$d/s.v" "$d/s2.v" 100 128 --uchar &&
		vips bandjoin "$d/s2.v $d/s2.v $d/s2.v" "$d/s3.v" &&
		vips pngsave "$d/s3.v" "$d/big.png" --compression 3
	rm -f "$d"/s*.v
	for f in photo.jpg alpha.png anim.gif pic.webp scan.tiff; do
		cp "$d/$f" "$d/noext-${f%.*}"
	done
}
