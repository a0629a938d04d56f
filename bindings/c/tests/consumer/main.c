#include <qadataswap/qadataswap.h>
#include <stdio.h>
#include <string.h>

int main(void) {
  qds_snapshot_reader* r = NULL;
  qds_status st = qds_snapshot_reader_open("qads-consumer-missing", NULL, &r);
  if (st != QDS_ERR_NOT_FOUND || strlen(qds_last_error_message()) == 0) return 1;
  printf("consumer_c: %s %s\n", qds_version(), qds_status_string(st));
  return 0;
}
