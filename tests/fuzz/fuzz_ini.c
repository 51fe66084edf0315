/* fuzz_ini.c - the INI config parser (common/ini): ini_parse and reads of
 * what it made. */
#include "common/ini.h"
#include "common/log.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_str(data, size);
	struct errbuf eb = { 0 };
	struct ini *ini = NULL;
	int i;

	if (!s)
		return 0;
	log_set_level(LOG_LVL_ERR);
	if (!ini_parse(s, "fuzz.conf", &ini, &eb)) {
		for (i = 0; i < ini->nsec; i++) {
			ini_get(&ini->sec[i], "type");
			ini_get(&ini->sec[i], "");
		}
		ini_section(ini, "s3");
		ini_free(ini);
	}
	free(s);
	return 0;
}
