/* fuzz_imagekit_json.c - ImageKit file objects as our metadata
 * (imagekit_meta_from_file of backend/imagekit.c): a listing is an array of them. */
#include "../../src/backend/imagekit.c"

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct obj_meta m;
	struct js *j = NULL;
	size_t i;

	log_set_level(LOG_LVL_ERR);
	if (js_parse((const char *)data, size, &j, NULL))
		return 0;
	imagekit_meta_from_file(j, &m);
	for (i = 0; i < js_len(j); i++)
		imagekit_meta_from_file(js_at(j, i), &m);
	js_free(j);
	return 0;
}
