/* hookbench - the built-in compressor (core/hooks) on a corpus, the way
 * the upload workers run it: N threads, one image each at a time, the
 * content type sniffed from the bytes, the original kept when the output
 * is not smaller. Also makes the corpus (libvips, in process).
 *
 *   hookbench corpus BASE.png... -o DIR -n N   N variants of the base
 *        images: crops of 300..1600 px, 70% JPEG q95, 20% PNG (half with
 *        alpha), 6% WebP q95, 4% GIF (via ImageMagick later, see
 *        scripts/bench-hooks.sh)
 *   hookbench run THREADS FILE...   prints "files in_bytes out_bytes
 *        seconds applied" and writes nothing next to the inputs
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <vips/vips.h>

#include "core/hooks.h"
#include "meta/sniff.h"

static char **files;
static int nfiles, next_file;
static unsigned long long in_bytes, out_bytes;
static int applied;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct hook_cfg cfg;
static struct sniff *sn;

static unsigned long long fsize(const char *p)
{
	struct stat st;

	return stat(p, &st) ? 0 : (unsigned long long)st.st_size;
}

static void *worker(void *arg)
{
	(void)arg;
	for (;;) {
		struct hook_result res;
		char out[4096], type[128], head[4096];
		unsigned long long in, o;
		FILE *f;
		size_t n = 0;
		int i;

		pthread_mutex_lock(&lock);
		i = next_file++;
		pthread_mutex_unlock(&lock);
		if (i >= nfiles)
			return NULL;
		f = fopen(files[i], "rb");
		if (f) {
			n = fread(head, 1, sizeof(head), f);
			fclose(f);
		}
		sniff_type(sn, head, n, files[i], type, sizeof(type));
		hook_run(&cfg, files[i], type, out, sizeof(out), &res);
		in = fsize(files[i]);
		o = res.applied ? fsize(out) : in;
		if (res.applied)
			unlink(out);
		pthread_mutex_lock(&lock);
		in_bytes += in;
		out_bytes += o;
		applied += res.applied;
		pthread_mutex_unlock(&lock);
	}
}

static int run(int threads, char **argv, int argc)
{
	struct timespec a, b;
	pthread_t th[64];
	struct errbuf eb = { 0 };
	int i;

	files = argv;
	nfiles = argc;
	cfg.kind = HOOK_COMPRESS;
	cfg.jpeg_quality = 85;
	cfg.webp_quality = 80;
	cfg.png_lossless = 1;
	if (sniff_new(&sn, &eb)) {
		fprintf(stderr, "hookbench: %s\n", eb.msg);
		return 1;
	}
	if (threads < 1 || threads > 64)
		threads = 2;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (i = 0; i < threads; i++)
		pthread_create(&th[i], NULL, worker, NULL);
	for (i = 0; i < threads; i++)
		pthread_join(th[i], NULL);
	clock_gettime(CLOCK_MONOTONIC, &b);
	printf("%d %llu %llu %.2f %d\n", nfiles, in_bytes, out_bytes,
	       (double)(b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9,
	       applied);
	sniff_free(sn);
	return 0;
}

static int corpus(char **bases, int nbases, const char *dir, int n)
{
	VipsImage **base = calloc((size_t)nbases, sizeof(*base));
	unsigned seed = 42;
	int i;

	if (!base || VIPS_INIT("hookbench"))
		return 1;
	for (i = 0; i < nbases; i++)
		if (!(base[i] = vips_image_new_from_file(bases[i], NULL)))
			return 1;
	for (i = 0; i < n; i++) {
		VipsImage *b = base[rand_r(&seed) % nbases], *c = NULL, *t = NULL;
		int w = 300 + rand_r(&seed) % 1300, h = w * 3 / 4;
		int x, y, kind = i % 100, rc;
		char path[4096];

		if (w > b->Xsize)
			w = b->Xsize;
		if (h > b->Ysize)
			h = b->Ysize;
		x = rand_r(&seed) % (b->Xsize - w + 1);
		y = rand_r(&seed) % (b->Ysize - h + 1);
		if (vips_crop(b, &c, x, y, w, h, NULL))
			return 1;
		if (kind < 70) {
			snprintf(path, sizeof(path), "%s/img-%04d.jpg", dir, i);
			rc = vips_jpegsave(c, path, "Q", 95, NULL);
		} else if (kind < 90) {
			/* graphics rather than photos (what PNG holds in
			 * practice): smoothed, 8 levels a channel, half with
			 * an alpha channel */
			VipsImage *s = NULL, *p = NULL;

			snprintf(path, sizeof(path), "%s/img-%04d.png", dir, i);
			rc = vips_gaussblur(c, &p, 4, NULL) ||
			     vips_andimage_const1(p, &t, 0xe0, NULL) ||
			     vips_cast(t, &s, VIPS_FORMAT_UCHAR, NULL);
			if (t)
				g_object_unref(t);
			t = NULL;
			if (!rc && kind % 2)
				rc = vips_bandjoin_const1(s, &t, 200, NULL);
			/* half as most tools write them (zlib 6, adaptive
			 * filter), half as fast exporters do (zlib 1, no
			 * filter) */
			if (!rc)
				rc = vips_pngsave(t ? t : s, path, "compression",
						  kind % 4 < 2 ? 6 : 1, "filter",
						  kind % 4 < 2 ?
						  VIPS_FOREIGN_PNG_FILTER_ALL :
						  VIPS_FOREIGN_PNG_FILTER_NONE,
						  NULL);
			if (t)
				g_object_unref(t);
			if (s)
				g_object_unref(s);
			if (p)
				g_object_unref(p);
		} else if (kind < 96) {
			snprintf(path, sizeof(path), "%s/img-%04d.webp", dir, i);
			rc = vips_webpsave(c, path, "Q", 95, NULL);
		} else {
			/* GIFs are made by ImageMagick from these PNGs */
			snprintf(path, sizeof(path), "%s/gif-src-%04d.png", dir,
				 i);
			rc = vips_pngsave(c, path, NULL);
		}
		g_object_unref(c);
		if (rc) {
			fprintf(stderr, "hookbench: %s: %s\n", path,
				vips_error_buffer());
			return 1;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc > 2 && !strcmp(argv[1], "run"))
		return run(atoi(argv[2]), argv + 3, argc - 3);
	if (argc > 6 && !strcmp(argv[1], "corpus")) {
		int nb = argc - 6;

		if (strcmp(argv[argc - 4], "-o") || strcmp(argv[argc - 2], "-n"))
			goto usage;
		return corpus(argv + 2, nb, argv[argc - 3], atoi(argv[argc - 1]));
	}
usage:
	fprintf(stderr, "usage: hookbench corpus BASE... -o DIR -n N | hookbench run THREADS FILE...\n");
	return 2;
}
