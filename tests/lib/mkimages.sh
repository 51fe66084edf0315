# tests/lib/mkimages.sh - real test images (sourced): mkimages DIR writes
# photo.jpg (1200x900, q95), alpha.png (16-bit, alpha), anim.gif (3
# frames), pic.webp (q95), scan.tiff, corrupt.jpg (a truncated JPEG),
# notes.jpg (text), big.png (8000x5000 = 40 MP), and each of the images
# again without an extension (noext-*). Uses ImageMagick and libvips's
# command line tools (Debian's imagemagick, libvips-tools).
mkimages() {
	local d=$1 C=/usr/bin/convert f
	mkdir -p "$d"
	$C -size 1200x900 plasma:fractal -seed 4 -quality 95 "$d/photo.jpg"
	$C -size 600x400 gradient:red-blue \( -size 600x400 radial-gradient: \) \
		-alpha off -compose copy_opacity -composite "$d/alpha.png"
	$C -size 200x200 xc:red xc:green xc:blue -loop 0 -set delay 20 "$d/anim.gif"
	$C -size 800x600 plasma:fractal -seed 5 -quality 95 "$d/pic.webp"
	$C -size 400x300 plasma:fractal -seed 6 "$d/scan.tiff"
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
