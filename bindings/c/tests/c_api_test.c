/* The C ABI from plain C11 with nothing but qadataswap.h: write a hand-built record batch, read it back through the
 * ArrowArrayStream, move a child out and check it keeps the lease, and check the error paths. */
#include <qadataswap/qadataswap.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int failures = 0;
#define CHECK(cond)                                                                  \
  do {                                                                               \
    if (!(cond)) {                                                                   \
      fprintf(stderr, "%s:%d: CHECK failed: %s (last error: %s)\n", __FILE__, __LINE__, #cond, \
              qds_last_error_message());                                            \
      failures++;                                                                    \
    }                                                                                \
  } while (0)

/* ---- a record batch {x: int64 with one null} built by hand (producer side of the C Data Interface) ---- */

static int64_t values[4] = {10, 20, 0, 40};
static uint8_t validity[1] = {0x0B}; /* rows 0, 1, 3 valid; row 2 null */
static int released_arrays = 0;

static void release_child(struct ArrowArray* a) {
  free((void*)a->buffers);
  a->release = NULL;
  released_arrays++;
}

static void release_parent(struct ArrowArray* a) {
  if (a->children[0]->release) a->children[0]->release(a->children[0]);
  free(a->children[0]);
  free(a->children);
  free((void*)a->buffers);
  a->release = NULL;
  released_arrays++;
}

static void make_batch(struct ArrowArray* out) {
  struct ArrowArray* child = calloc(1, sizeof *child);
  const void** cbuf = calloc(2, sizeof *cbuf);
  cbuf[0] = validity;
  cbuf[1] = values;
  child->length = 4;
  child->null_count = 1;
  child->n_buffers = 2;
  child->buffers = cbuf;
  child->release = release_child;

  const void** pbuf = calloc(1, sizeof *pbuf);
  struct ArrowArray** children = calloc(1, sizeof *children);
  children[0] = child;
  memset(out, 0, sizeof *out);
  out->length = 4;
  out->n_buffers = 1;
  out->buffers = pbuf;
  out->n_children = 1;
  out->children = children;
  out->release = release_parent;
}

static void release_schema_noop(struct ArrowSchema* s) { s->release = NULL; }

int main(void) {
  char name[64];
  snprintf(name, sizeof name, "qads-c-test-%ld", (long)getpid());

  /* Errors: a missing segment, with a message naming it. */
  qds_snapshot_reader* missing = NULL;
  CHECK(qds_snapshot_reader_open(name, NULL, &missing) == QDS_ERR_NOT_FOUND);
  CHECK(strstr(qds_last_error_message(), name) != NULL);
  CHECK(missing == NULL);
  CHECK(qds_snapshot_reader_open(NULL, NULL, &missing) == QDS_ERR_INVALID_ARGUMENT);
  CHECK(strcmp(qds_status_string(QDS_ERR_TIMEOUT), "QDS_ERR_TIMEOUT") == 0);

  qds_writer_options wopts;
  qds_writer_options_init(&wopts);
  CHECK(wopts.num_buffers == 3);
  qds_snapshot_writer* w = NULL;
  CHECK(qds_snapshot_writer_create(name, 1 << 20, &wopts, &w) == QDS_OK);

  qds_reader_options ropts;
  qds_reader_options_init(&ropts);
  ropts.timeout_ms = 50;
  qds_snapshot_reader* r = NULL;
  CHECK(qds_snapshot_reader_open(name, &ropts, &r) == QDS_OK);

  /* Nothing published yet: try_read says so, a read times out with a message. */
  struct ArrowArrayStream stream;
  CHECK(qds_snapshot_reader_try_read(r, &stream, NULL) == QDS_NO_FRAME);
  CHECK(stream.release == NULL);
  CHECK(qds_snapshot_reader_read(r, &stream, NULL) == QDS_ERR_TIMEOUT);
  CHECK(strstr(qds_last_error_message(), "timed out") != NULL);

  /* Write the hand-built batch: the array is moved (released by the library), the schema borrowed. */
  struct ArrowSchema x_schema = {"l", "x", NULL, ARROW_FLAG_NULLABLE, 0, NULL, NULL, release_schema_noop, NULL};
  struct ArrowSchema* x_children[1] = {&x_schema};
  struct ArrowSchema schema = {"+s", "", NULL, 0, 1, x_children, NULL, release_schema_noop, NULL};
  struct ArrowArray batch;
  make_batch(&batch);
  qds_write_info winfo;
  CHECK(qds_snapshot_writer_write_batch(w, &batch, &schema, &winfo) == QDS_OK);
  CHECK(batch.release == NULL);
  CHECK(released_arrays == 2);
  CHECK(winfo.seq == 1 && winfo.rows == 4);

  /* Read it back and walk the stream. */
  qds_frame_info info;
  CHECK(qds_snapshot_reader_read(r, &stream, &info) == QDS_OK);
  CHECK(info.seq == 1 && info.num_rows == 4 && info.num_batches == 1);
  struct ArrowSchema got_schema;
  CHECK(stream.get_schema(&stream, &got_schema) == 0);
  CHECK(strcmp(got_schema.format, "+s") == 0);
  CHECK(got_schema.n_children == 1);
  CHECK(strcmp(got_schema.children[0]->format, "l") == 0);
  CHECK(strcmp(got_schema.children[0]->name, "x") == 0);
  got_schema.release(&got_schema);

  struct ArrowArray got;
  CHECK(stream.get_next(&stream, &got) == 0);
  CHECK(got.release != NULL && got.length == 4 && got.n_children == 1);
  struct ArrowArray* col = got.children[0];
  CHECK(col->length == 4 && col->null_count == 1 && col->n_buffers == 2);
  const uint8_t* bits = col->buffers[0];
  const int64_t* vals = col->buffers[1];
  CHECK(bits != NULL && (bits[0] & 0x0F) == 0x0B);
  CHECK(vals[0] == 10 && vals[1] == 20 && vals[3] == 40);
  struct ArrowArray end;
  CHECK(stream.get_next(&stream, &end) == 0);
  CHECK(end.release == NULL); /* end of stream */
  stream.release(&stream);
  CHECK(stream.release == NULL);

  /* Move the child out, release the parent: the child alone still holds the lease. */
  struct ArrowArray moved = *col;
  col->release = NULL;
  uint64_t leases = 0;
  CHECK(qds_snapshot_reader_lease_count(r, &leases) == QDS_OK && leases == 1);
  got.release(&got);
  CHECK(qds_snapshot_reader_lease_count(r, &leases) == QDS_OK && leases == 1);
  CHECK(((const int64_t*)moved.buffers[1])[3] == 40);
  moved.release(&moved);
  CHECK(qds_snapshot_reader_lease_count(r, &leases) == QDS_OK && leases == 0);

  /* The writer closes: the reader already attached gets WRITER_CLOSED from read_next. */
  CHECK(qds_snapshot_writer_close(w) == QDS_OK);
  CHECK(qds_snapshot_writer_write_batch(w, NULL, &schema, NULL) == QDS_ERR_INVALID_ARGUMENT);
  CHECK(qds_snapshot_reader_read_next(r, 2000, &stream, NULL) == QDS_ERR_WRITER_CLOSED);
  CHECK(strstr(qds_last_error_message(), "closed") != NULL);
  qds_snapshot_writer_free(w);

  CHECK(qds_snapshot_reader_close(r) == QDS_OK);
  CHECK(qds_snapshot_reader_read(r, &stream, NULL) == QDS_ERR_CLOSED);
  qds_snapshot_reader_free(r);
  qds_snapshot_reader_free(NULL);

  /* ---- a stream: two chunks in order, then QDS_END_OF_STREAM ---- */
  char sname[80];
  snprintf(sname, sizeof sname, "qads-c-stream-test-%ld", (long)getpid());
  qds_stream_writer_options swo;
  qds_stream_writer_options_init(&swo);
  CHECK(swo.num_buffers == 3);
  swo.num_buffers = 4;
  qds_stream_writer* sw = NULL;
  CHECK(qds_stream_writer_create(sname, 1 << 20, &swo, &sw) == QDS_OK);
  qds_stream_reader_options sro;
  qds_stream_reader_options_init(&sro);
  CHECK(sro.start == QDS_START_OLDEST);
  sro.start = 7;
  qds_stream_reader* sr = NULL;
  CHECK(qds_stream_reader_open(sname, &sro, &sr) == QDS_ERR_INVALID_ARGUMENT);
  sro.start = QDS_START_OLDEST;
  CHECK(qds_stream_reader_open(sname, &sro, &sr) == QDS_OK);
  size_t attached = 0;
  CHECK(qds_stream_writer_wait_for_readers(sw, 1, 1000, &attached) == QDS_OK && attached == 1);
  CHECK(qds_stream_reader_try_next_chunk(sr, &stream, &info) == QDS_NO_FRAME);
  for (int k = 0; k < 2; k++) {
    make_batch(&batch);
    CHECK(qds_stream_writer_write_batch(sw, &batch, &schema, &winfo) == QDS_OK);
    CHECK(winfo.seq == (uint64_t)k + 1);
  }
  CHECK(qds_stream_writer_finish(sw) == QDS_OK);
  CHECK(qds_stream_writer_write_batch(sw, NULL, &schema, NULL) == QDS_ERR_INVALID_ARGUMENT);
  for (int k = 0; k < 2; k++) {
    CHECK(qds_stream_reader_next_chunk(sr, 2000, &stream, &info) == QDS_OK);
    CHECK(info.seq == (uint64_t)k + 1 && info.num_rows == 4);
    CHECK(stream.get_next(&stream, &got) == 0);
    CHECK(got.release != NULL && ((const int64_t*)got.children[0]->buffers[1])[3] == 40);
    got.release(&got);
    stream.release(&stream);
  }
  CHECK(qds_stream_reader_next_chunk(sr, 2000, &stream, &info) == QDS_END_OF_STREAM);
  CHECK(stream.release == NULL);
  CHECK(strcmp(qds_status_string(QDS_END_OF_STREAM), "QDS_END_OF_STREAM") == 0);
  qds_stream_stats sst;
  CHECK(qds_stream_writer_stats(sw, &sst) == QDS_OK && sst.chunks_written == 2);
  qds_stream_reader_free(sr);
  qds_stream_writer_free(sw);

  if (failures) {
    fprintf(stderr, "c_api_test: %d checks failed\n", failures);
    return 1;
  }
  printf("c_api_test: all checks passed (qadataswap %s)\n", qds_version());
  return 0;
}
