/* fuzz_s3_xml.c - the S3 listing (ListObjectsV2) and error reply parsers:
 * parse_list_page and parse_error of backend/s3.c, through net/xml. */
#include "../../src/backend/s3.c"

#include "fuzz.h"

static enum mfs_err entry(void *ud, const char *name, const struct obj_meta *m)
{
	(void)ud;
	/* every name a listing hands out is one usable path component */
	if (!*name || strchr(name, '/') || m->size > UINT64_MAX)
		abort();
	return MFS_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct backend be = { 0 };
	struct buf body = { 0 };
	struct list_page pg;
	struct s3_error e;
	struct errbuf eb = { 0 };
	static char name[] = "fuzz";

	log_set_level(LOG_LVL_ERR);
	be.name = name;
	body.data = fuzz_str(data, size);
	body.len = size;
	if (!body.data)
		return 0;
	if (!parse_list_page(&be, "dir/", &body, entry, NULL, &pg, &eb))
		free(pg.next_token);
	if (!parse_list_page(&be, "", &body, entry, NULL, &pg, &eb))
		free(pg.next_token);
	if (parse_error(&body, &e))
		s3_error_cleanup(&e);
	free(body.data);
	return 0;
}
