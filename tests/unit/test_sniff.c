/* meta/sniff: types from the bytes; the extension only breaks ties. */
#include "meta/sniff.h"
#include "unit.h"

TEST_MAIN("test_sniff")

static const unsigned char png[] = {
	0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H',
	'D', 'R', 0, 0, 0, 16, 0, 0, 0, 16, 8, 6, 0, 0, 0, 0x1f, 0xf3, 0xff,
	0x61,
};
static const unsigned char jpeg[] = {
	0xff, 0xd8, 0xff, 0xe0, 0, 16, 'J', 'F', 'I', 'F', 0, 1, 1, 0, 0, 1,
	0, 1, 0, 0,
};
static const unsigned char gif[] = "GIF89a\x10\x00\x10\x00\x80\x00\x00";
static const unsigned char webp[] = "RIFF\x24\x00\x00\x00WEBPVP8 \x18\x00\x00\x00";
static const unsigned char tiff[] = "II*\x00\x08\x00\x00\x00\x0e\x00";
static const unsigned char pdf[] = "%PDF-1.4\n%\xe2\xe3\xcf\xd3\n";
/* what the fast path answers without libmagic; libmagic (file 5.44) says
 * the same of each, whatever follows the header */
static const unsigned char jpeg_exif[] = "\xff\xd8\xff\xe1\x00\x10" "Exif\x00\x13\x37\x00\xfe";
static const unsigned char jpeg_bare[] = "\xff\xd8\xff\xdb\x99\x01\x7a\x00";
static const unsigned char gif87[] = "GIF87a\x13\x37\x00\xfe\x42";
static const unsigned char webpx[] = "RIFF\x10\x00\x00\x00WEBPVP8X\x13\x37\x00";
static const unsigned char png_sig_only[] = "\x89PNG\r\n\x1a\n\x13\x37\x00\xfe\x42\x99\x01\x7a\x00\x00\xc3";
static const unsigned char riff_wave[] = "RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\x44\xac\x00\x00\x88\x58\x01\x00\x02\x00\x10\x00";
static const unsigned char text[] = "body { color: red; }\n";
static const unsigned char noise[] = {
	0x13, 0x37, 0x00, 0xfe, 0x42, 0x99, 0x01, 0x7a, 0x00, 0x00, 0xc3,
	0x5e, 0x11, 0x00, 0x80, 0x04,
};

int main(void)
{
	static const struct {
		const char *what;
		const void *p;
		size_t n;
		const char *name;
		const char *want;
	} cases[] = {
		{ "PNG, no extension", png, sizeof(png), "a1b2c3", "image/png" },
		{ "JPEG, no extension", jpeg, sizeof(jpeg), "img", "image/jpeg" },
		{ "GIF", gif, sizeof(gif) - 1, "x", "image/gif" },
		{ "WebP", webp, sizeof(webp) - 1, "x", "image/webp" },
		{ "TIFF", tiff, sizeof(tiff) - 1, "x", "image/tiff" },
		{ "JPEG with Exif", jpeg_exif, sizeof(jpeg_exif) - 1, "x",
		  "image/jpeg" },
		{ "JPEG without APP0", jpeg_bare, sizeof(jpeg_bare) - 1, "x",
		  "image/jpeg" },
		{ "GIF87a", gif87, sizeof(gif87) - 1, "x", "image/gif" },
		{ "WebP extended", webpx, sizeof(webpx) - 1, "x", "image/webp" },
		{ "PNG signature without IHDR is not a PNG (libmagic)",
		  png_sig_only, sizeof(png_sig_only) - 1, "x",
		  "application/octet-stream" },
		{ "RIFF that is not WebP goes to libmagic", riff_wave,
		  sizeof(riff_wave) - 1, "x", "audio/x-wav" },
		{ "PDF", pdf, sizeof(pdf) - 1, "x", "application/pdf" },
		{ "PNG named .jpg: the bytes win", png, sizeof(png),
		  "photo.jpg", "image/png" },
		{ "text named .css: the extension breaks the tie", text,
		  sizeof(text) - 1, "site.css", "text/css" },
		{ "text named .jpg stays text", text, sizeof(text) - 1,
		  "notes.jpg", "text/plain" },
		{ "text named .json: a textual extension refines", text,
		  sizeof(text) - 1, "d.json", "application/json" },
		{ "unknown bytes named .jpg: the extension decides", noise,
		  sizeof(noise), "x.jpg", "image/jpeg" },
		{ "text, no extension", text, sizeof(text) - 1, "readme",
		  "text/plain" },
		{ "unknown bytes", noise, sizeof(noise), "blob",
		  "application/octet-stream" },
		{ "empty, .json", "", 0, "e.json", "application/json" },
		{ "empty, no extension", "", 0, "e", "application/octet-stream" },
		{ "name with a dot in a directory only", noise, sizeof(noise),
		  "v1.2/blob", "application/octet-stream" },
	};
	struct errbuf eb = { 0 };
	struct sniff *s = NULL;
	char out[128];
	size_t i;

	CASE("load the magic database");
	CHECK(sniff_new(&s, &eb) == MFS_OK);
	for (i = 0; s && i < sizeof(cases) / sizeof(cases[0]); i++) {
		CASE(cases[i].what);
		sniff_type(s, cases[i].p, cases[i].n, cases[i].name, out,
			   sizeof(out));
		CHECK_STR(out, cases[i].want);
	}
	CASE("without a database: octet-stream or the extension");
	sniff_type(NULL, png, sizeof(png), "x", out, sizeof(out));
	CHECK_STR(out, "application/octet-stream");
	sniff_type(NULL, png, sizeof(png), "x.png", out, sizeof(out));
	CHECK_STR(out, "image/png");
	sniff_free(s);
	return unit_report();
}
