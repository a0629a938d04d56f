/*
 * qadataswap.h: the C ABI of QADataSwap.
 *
 * Zero-copy hand-off of Arrow data between processes through named POSIX shared memory. A snapshot writer
 * publishes frames (one or more record batches of one schema) into a ring of slots; readers in any process get the
 * newest frame as an ArrowArrayStream whose buffers point straight into the segment. Every ArrowArray taken from
 * that stream, and every child or dictionary moved out of one, holds the slot's lease until it is released: the
 * writer never overwrites data someone can still see. A stream writer instead publishes an ordered, lossless
 * sequence of chunks that every reader receives in full (see "stream" below).
 *
 * Needs only the C standard library and the Arrow C Data Interface structs (declared below under their standard
 * guards, so this header coexists with arrow/c/abi.h and nanoarrow).
 *
 * Conventions
 *   - Every function returns a qds_status; QDS_OK (0) is success. On failure qds_last_error_message() describes
 *     what happened and what to do, for the calling thread.
 *   - Out-pointers are written only on success, except read functions, which leave a released stream
 *     (release == NULL) in *out on failure.
 *   - Timeouts are milliseconds, or QDS_TIMEOUT_INFINITE / QDS_TIMEOUT_DEFAULT.
 *   - No call unwinds or aborts on bad input; internal bugs come back as QDS_ERR_PANIC.
 *   - A writer handle serialises its callers; a reader handle may be used by many threads at once. Handles do not
 *     survive fork(): use them only in the process that made them (QDS_ERR_FORKED).
 *
 * Example (reader):
 *   qds_snapshot_reader* r = NULL;
 *   if (qds_snapshot_reader_open("mydata", NULL, &r) != QDS_OK) { fprintf(stderr, "%s\n", qds_last_error_message()); }
 *   struct ArrowArrayStream stream;
 *   if (qds_snapshot_reader_read_timeout(r, 1000, &stream, NULL) == QDS_OK) {
 *       ... stream.get_schema / stream.get_next ...; stream.release(&stream);
 *   }
 *   qds_snapshot_reader_free(r);
 */
#ifndef QADATASWAP_H
#define QADATASWAP_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Arrow C Data Interface (https://arrow.apache.org/docs/format/CDataInterface.html) ---- */
#ifndef ARROW_C_DATA_INTERFACE
#define ARROW_C_DATA_INTERFACE

#define ARROW_FLAG_DICTIONARY_ORDERED 1
#define ARROW_FLAG_NULLABLE 2
#define ARROW_FLAG_MAP_KEYS_SORTED 4

struct ArrowSchema {
  /* Array type description */
  const char* format;
  const char* name;
  const char* metadata;
  int64_t flags;
  int64_t n_children;
  struct ArrowSchema** children;
  struct ArrowSchema* dictionary;

  /* Release callback */
  void (*release)(struct ArrowSchema*);
  /* Opaque producer-specific data */
  void* private_data;
};

struct ArrowArray {
  /* Array data description */
  int64_t length;
  int64_t null_count;
  int64_t offset;
  int64_t n_buffers;
  int64_t n_children;
  const void** buffers;
  struct ArrowArray** children;
  struct ArrowArray* dictionary;

  /* Release callback */
  void (*release)(struct ArrowArray*);
  /* Opaque producer-specific data */
  void* private_data;
};

#endif /* ARROW_C_DATA_INTERFACE */

/* ---- Arrow C Stream Interface (https://arrow.apache.org/docs/format/CStreamInterface.html) ---- */
#ifndef ARROW_C_STREAM_INTERFACE
#define ARROW_C_STREAM_INTERFACE

struct ArrowArrayStream {
  /* Callbacks providing stream functionality */
  int (*get_schema)(struct ArrowArrayStream*, struct ArrowSchema* out);
  int (*get_next)(struct ArrowArrayStream*, struct ArrowArray* out);
  const char* (*get_last_error)(struct ArrowArrayStream*);

  /* Release callback */
  void (*release)(struct ArrowArrayStream*);

  /* Opaque producer-specific data */
  void* private_data;
};

#endif /* ARROW_C_STREAM_INTERFACE */

/* ---- status codes ---- */

typedef enum qds_status {
  QDS_OK = 0,
  QDS_NO_FRAME = 1,                /* not an error: a non-blocking call found no frame yet */
  QDS_ERR_INVALID_ARGUMENT = 2,    /* NULL pointer, invalid name, option out of range, not a struct array */
  QDS_ERR_NOT_FOUND = 3,           /* no segment of that name */
  QDS_ERR_ALREADY_EXISTS = 4,      /* a segment of that name exists and cannot be taken over */
  QDS_ERR_PERMISSION_DENIED = 5,   /* another user's segment, or unsafe permissions */
  QDS_ERR_WRITER_ALIVE = 6,        /* another live writer owns the segment */
  QDS_ERR_TIMEOUT = 7,             /* a blocking call reached its timeout */
  QDS_ERR_WRITER_CLOSED = 8,       /* the writer closed cleanly; nothing newer will come */
  QDS_ERR_WRITER_DIED = 9,         /* the writer died without closing */
  QDS_ERR_ALL_SLOTS_LEASED = 10,   /* readers hold every slot; release old frames sooner */
  QDS_ERR_SLOT_TOO_SMALL = 11,     /* the frame does not fit: create a larger segment */
  QDS_ERR_SCHEMA_TOO_LARGE = 12,   /* the schema does not fit the schema area */
  QDS_ERR_TOO_MANY_READERS = 13,   /* the reader table is full */
  QDS_ERR_VERSION_MISMATCH = 14,   /* incompatible format version */
  QDS_ERR_CORRUPT = 15,            /* corrupt segment or frame, or not a qadataswap segment */
  QDS_ERR_WRONG_MODE = 16,         /* snapshot API on a stream segment or the reverse */
  QDS_ERR_FORKED = 17,             /* handle inherited across fork() */
  QDS_ERR_NOT_INITIALISED = 18,    /* the creator has not finished setting the segment up */
  QDS_ERR_ARROW = 19,              /* Arrow refused the data (type, invalid C Data Interface struct) */
  QDS_ERR_CLOSED = 20,             /* the handle was closed */
  QDS_ERR_PANIC = 21,              /* internal bug caught at the boundary: please report it */
  QDS_ERR_IO = 22,                 /* operating-system error */
  QDS_ERR_OTHER = 23,
  QDS_END_OF_STREAM = 24,          /* not an error: the stream was finished and every chunk was read */
  QDS_ERR_READERS_BEHIND = 25,     /* a stream write waited through every attempt; the slowest reader did not move */
  QDS_ERR_RING_HELD = 26,          /* this stream reader still holds the slot its next chunk needs: release chunks */
  QDS_ERR_CHUNKS_LOST = 27,        /* chunks this stream reader had not read are gone: open a new reader */
  QDS_ERR_FINISHED = 28,           /* write on a stream writer after finish */
  QDS_ERR_IN_USE = 29,             /* not removed: a live process uses it, or dead ones are registered (force) */
  QDS_ERR_NOT_OURS = 30,           /* not removed: another program's file, another user's, or unverifiable */
  QDS_ERR_NO_READERS = 31,         /* a stream's first write waited for min_readers readers; none came */
  QDS_ERR_CHUNKS_MISSED = 32       /* this stream reader attached late: the first chunks are gone (once) */
} qds_status;

/* The message of the last failed call on this thread ("" if none). Valid until the next failing call on this
 * thread; copy it to keep it. Never NULL. */
const char* qds_last_error_message(void);

/* A static name for a status code ("QDS_ERR_TIMEOUT", ...). Never NULL. */
const char* qds_status_string(int status);

/* Remove the segment `name` (snapshot or stream) if it is this library's, this user's, and no live process uses
 * it: the rule of `qadataswap rm`. With force != 0, also when dead processes are still registered in it.
 * QDS_ERR_IN_USE, QDS_ERR_NOT_OURS or QDS_ERR_NOT_FOUND otherwise; nothing else is ever removed. */
qds_status qds_remove(const char* name, int force);

/* The library version ("0.1.0"). */
const char* qds_version(void);

/* ---- options ---- */

#define QDS_TIMEOUT_INFINITE ((int64_t)-1) /* wait until data arrives or the writer goes away */
#define QDS_TIMEOUT_DEFAULT ((int64_t)-2)  /* the reader's default timeout (qds_reader_options.timeout_ms) */

#define QDS_VALIDATION_TRUSTED 0u /* default: metadata checked, bodies trusted (O(columns)) */
#define QDS_VALIDATION_FULL 1u    /* plus Arrow's full validation of bodies (O(rows)) */

typedef struct qds_writer_options {
  size_t num_buffers;        /* slots in the ring (default 3); size_bytes is split across them */
  size_t reader_capacity;    /* reader-table entries (default 64) */
  size_t schema_capacity;    /* schema-area bytes (default 64 KiB) */
  uint32_t permissions;      /* file mode (default 0600) */
  uint32_t persistent;       /* non-zero: keep the segment after the writer closes */
  uint32_t spin;             /* spin iterations before parking */
  uint64_t lease_timeout_ms; /* how long a write waits for a leased slot (default 5000) */
} qds_writer_options;

typedef struct qds_reader_options {
  int64_t timeout_ms;         /* default timeout of blocking reads, or QDS_TIMEOUT_INFINITE (default) */
  uint64_t open_timeout_ms;   /* wait for the segment to be created by its writer, watching /dev/shm (default 5000;
                               * 0: fail at once with QDS_ERR_NOT_FOUND) */
  uint32_t spin;              /* spin iterations before parking */
  uint32_t validation;        /* QDS_VALIDATION_TRUSTED (default) or QDS_VALIDATION_FULL */
  uint32_t allow_shared_mode; /* non-zero: accept group/other permission bits on the segment */
} qds_reader_options;

/* Fill with defaults (NULL is ignored): the configuration's (qadataswap.yaml, QADATASWAP_* variables) where it has
 * the option (num_buffers, lease_timeout_ms = sync.timeout_ms, open_timeout_ms = sync.timeout_ms), else built-in. */
void qds_writer_options_init(qds_writer_options* out);
void qds_reader_options_init(qds_reader_options* out);

typedef struct qds_write_info {
  uint64_t seq;   /* the frame's sequence number (1, 2, ...) */
  uint64_t slot;  /* the slot it went to */
  uint64_t bytes; /* encoded size */
  uint64_t rows;  /* rows over all batches */
} qds_write_info;

typedef struct qds_frame_info {
  uint64_t seq;           /* the frame's sequence number */
  uint64_t num_rows;      /* rows over all batches */
  uint64_t num_batches;   /* record batches in the frame */
  uint64_t num_bytes;     /* encoded size in the slot */
  uint64_t write_time_ns; /* commit time (CLOCK_REALTIME, ns) */
} qds_frame_info;

/* ---- snapshot writer ---- */

typedef struct qds_snapshot_writer qds_snapshot_writer;

/* Create the snapshot segment `name` (or take it over from a dead writer) with `size_bytes` of data capacity split
 * across the slots. `size_bytes` 0 and `opts` NULL take the configuration's values (qadataswap.yaml from
 * $QADATASWAP_CONFIG or the working directory, QADATASWAP_* variables, else the built-in defaults); a broken
 * configuration file gives QDS_ERR_INVALID_ARGUMENT naming it. */
qds_status qds_snapshot_writer_create(const char* name, size_t size_bytes, const qds_writer_options* opts,
                                      qds_snapshot_writer** out);

/* Publish every record batch of `stream` (struct arrays) as one frame, not rechunked. The stream is consumed:
 * released before this returns, whatever the outcome. `info` may be NULL. */
qds_status qds_snapshot_writer_write_stream(qds_snapshot_writer* writer, struct ArrowArrayStream* stream,
                                            qds_write_info* info);

/* Publish one record batch given as a struct `array` with its struct `schema`. The array is moved (released before
 * this returns, whatever the outcome); the schema is borrowed (still yours to release). `info` may be NULL. */
qds_status qds_snapshot_writer_write_batch(qds_snapshot_writer* writer, struct ArrowArray* array,
                                           const struct ArrowSchema* schema, qds_write_info* info);

/* Close cleanly: attached readers keep what they hold, then get QDS_ERR_WRITER_CLOSED from read_next; the name is
 * unlinked unless persistent. The handle stays allocated (later calls: QDS_ERR_CLOSED) until freed. */
qds_status qds_snapshot_writer_close(qds_snapshot_writer* writer);

/* Free (closing first if needed; use close to see its errors). NULL is ignored. */
void qds_snapshot_writer_free(qds_snapshot_writer* writer);

/* ---- snapshot reader ---- */

typedef struct qds_snapshot_reader qds_snapshot_reader;

/* Attach to the snapshot segment `name`. `opts` may be NULL (defaults). */
qds_status qds_snapshot_reader_open(const char* name, const qds_reader_options* opts, qds_snapshot_reader** out);

/* The newest committed frame as a stream of record batches in shared memory (no copy). Blocks, up to the reader's
 * default timeout, only until a first frame exists. `*out` is overwritten (not released) and must be released by
 * the caller on success; on failure it is a released stream. `info` may be NULL. */
qds_status qds_snapshot_reader_read(const qds_snapshot_reader* reader, struct ArrowArrayStream* out,
                                    qds_frame_info* info);

/* As qds_snapshot_reader_read with an explicit timeout. */
qds_status qds_snapshot_reader_read_timeout(const qds_snapshot_reader* reader, int64_t timeout_ms,
                                            struct ArrowArrayStream* out, qds_frame_info* info);

/* The newest frame strictly newer than the last one this reader returned, waiting up to `timeout_ms`. Once the
 * writer closed (died) and nothing newer exists: QDS_ERR_WRITER_CLOSED (QDS_ERR_WRITER_DIED). */
qds_status qds_snapshot_reader_read_next(const qds_snapshot_reader* reader, int64_t timeout_ms,
                                         struct ArrowArrayStream* out, qds_frame_info* info);

/* The newest committed frame without blocking: QDS_OK, or QDS_NO_FRAME before the first write. */
qds_status qds_snapshot_reader_try_read(const qds_snapshot_reader* reader, struct ArrowArrayStream* out,
                                        qds_frame_info* info);

/* The newest frame, fully validated and copied into private memory (for producers that are not trusted). */
qds_status qds_snapshot_reader_read_copied(const qds_snapshot_reader* reader, struct ArrowArrayStream* out,
                                           qds_frame_info* info);

/* The schema of the newest frame (QDS_NO_FRAME before the first write); the caller releases `*out`. */
qds_status qds_snapshot_reader_schema(const qds_snapshot_reader* reader, struct ArrowSchema* out);

/* Slot leases this reader holds right now (non-zero while exported data is alive). For tests and diagnostics. */
qds_status qds_snapshot_reader_lease_count(const qds_snapshot_reader* reader, uint64_t* out);

/* Sequence number of the last frame this reader returned (0: none yet). */
qds_status qds_snapshot_reader_last_seq(const qds_snapshot_reader* reader, uint64_t* out);

/* Detach. Data already exported stays valid until released. The handle stays allocated until freed. */
qds_status qds_snapshot_reader_close(qds_snapshot_reader* reader);

/* Free (detaching first if needed). NULL is ignored. */
void qds_snapshot_reader_free(qds_snapshot_reader* reader);

/* ---- stream (SharedDataStream): lossless, ordered chunks from one writer to any number of readers ----
 *
 * Every reader sees every chunk from its start on, exactly once and in order (chunks are numbered 1, 2, ...). The
 * writer never overwrites a chunk a live reader has not read: when the slowest reader is a whole ring behind, a
 * write waits (timeout_ms per attempt, retry_count retries) and then fails with QDS_ERR_READERS_BEHIND. A reader
 * process that dies stops holding the writer back. qds_stream_writer_finish ends the stream: readers drain every
 * chunk and then get QDS_END_OF_STREAM. A writer that dies instead is reported, after the drain, as
 * QDS_ERR_WRITER_DIED; one closed or freed without finish as QDS_ERR_WRITER_CLOSED.
 *
 * Chunks are read like snapshots: an ArrowArrayStream over the shared memory whose arrays hold the slot's lease
 * until released. A reader can keep at most num_buffers - 1 chunks alive while it reads on (else
 * QDS_ERR_RING_HELD, never a deadlock).
 *
 * Defaults come from the configuration (qadataswap.yaml in the working directory or $QADATASWAP_CONFIG, then
 * QADATASWAP_* variables); explicit options win.
 *
 * Threads: both stream handles serialise their callers (a blocking next_chunk holds the reader until it returns);
 * use one reader per consuming thread. Exported chunks may be released on any thread.
 *
 * Example (reader):
 *   qds_stream_reader* r = NULL;
 *   if (qds_stream_reader_open("ticks", NULL, &r) != QDS_OK) { ... qds_last_error_message() ... }
 *   struct ArrowArrayStream chunk;
 *   qds_frame_info info;
 *   qds_status st;
 *   while ((st = qds_stream_reader_next_chunk(r, QDS_TIMEOUT_DEFAULT, &chunk, &info)) == QDS_OK) {
 *       ... chunk.get_next ...; chunk.release(&chunk);
 *   }
 *   if (st != QDS_END_OF_STREAM) { ... the stream did not end cleanly ... }
 *   qds_stream_reader_free(r);
 */

#define QDS_START_OLDEST 0u /* a new reader starts at the oldest chunk still in the ring (default) */
#define QDS_START_NEXT 1u   /* a new reader starts at the first chunk published after it attached */

typedef struct qds_stream_writer_options {
  size_t num_buffers;     /* slots in the ring (default: memory.num_buffers, 3); size_bytes is split across them */
  size_t reader_capacity; /* reader-table entries (default 64) */
  int64_t timeout_ms;     /* one attempt of a write waiting for slow readers (default: sync.timeout_ms, 5000), or
                             QDS_TIMEOUT_INFINITE */
  uint32_t retry_count;   /* attempts after the first before QDS_ERR_READERS_BEHIND (default: sync.retry_count, 3) */
  uint32_t persistent;    /* non-zero: keep the segment after finish (late readers read the retained chunks) */
  uint32_t spin;          /* spin iterations before parking (default 0) */
  uint32_t min_readers;   /* readers attached before the first chunk is written (default 1; 0: broadcast); the
                             first write waits for them up to the timeout, then QDS_ERR_NO_READERS */
  uint64_t linger_ms;     /* finish keeps the name this long for attached readers that have not read the end
                             (default: the timeout, 5000) */
} qds_stream_writer_options;

typedef struct qds_stream_reader_options {
  int64_t timeout_ms;   /* one attempt of next_chunk(QDS_TIMEOUT_DEFAULT) (default: sync.timeout_ms, 5000), or
                           QDS_TIMEOUT_INFINITE */
  uint32_t retry_count; /* attempts after the first of a QDS_TIMEOUT_DEFAULT read (default: sync.retry_count, 3) */
  uint32_t start;       /* QDS_START_OLDEST (default) or QDS_START_NEXT */
  uint32_t spin;        /* spin iterations before parking (default 50) */
  uint32_t validation;  /* QDS_VALIDATION_TRUSTED (default) or QDS_VALIDATION_FULL */
} qds_stream_reader_options;

/* Fill with defaults, from the configuration (NULL is ignored). */
void qds_stream_writer_options_init(qds_stream_writer_options* out);
void qds_stream_reader_options_init(qds_stream_reader_options* out);

typedef struct qds_stream_stats {
  uint64_t chunks_written; /* writer */
  uint64_t bytes_written;  /* writer: encoded bytes */
  uint64_t chunks_read;    /* reader */
  uint64_t bytes_read;     /* reader: encoded bytes */
  uint64_t lease_waits;    /* writer: writes that waited for the slowest reader (back-pressure) */
  uint64_t timeouts;       /* wait attempts that ran out */
  uint64_t copies;         /* reader: buffers copied into private memory (compressed chunks) */
} qds_stream_stats;

typedef struct qds_stream_writer qds_stream_writer;
typedef struct qds_stream_reader qds_stream_reader;

/* Create the stream `name` (or take it over from a dead writer: numbering continues) with `size_bytes` of data
 * capacity split across the slots. `opts` may be NULL (defaults). */
qds_status qds_stream_writer_create(const char* name, size_t size_bytes, const qds_stream_writer_options* opts,
                                    qds_stream_writer** out);

/* Write every record batch of `stream` (struct arrays) as the next chunk, not rechunked; waits while the slowest
 * reader is a whole ring behind. The stream is consumed (released before this returns, whatever the outcome).
 * `info` (may be NULL) gets the chunk's number in `seq`. */
qds_status qds_stream_writer_write_stream(qds_stream_writer* writer, struct ArrowArrayStream* stream,
                                          qds_write_info* info);

/* Write one record batch, a struct `array` with its struct `schema`, as the next chunk. The array is moved
 * (released before this returns, whatever the outcome); the schema is borrowed. `info` may be NULL. */
qds_status qds_stream_writer_write_batch(qds_stream_writer* writer, struct ArrowArray* array,
                                         const struct ArrowSchema* schema, qds_write_info* info);

/* Wait until at least `n` readers are attached, up to `timeout_ms` (or QDS_TIMEOUT_INFINITE); `*attached` (may be
 * NULL) gets how many are. QDS_ERR_TIMEOUT if fewer attached in time. */
qds_status qds_stream_writer_wait_for_readers(const qds_stream_writer* writer, size_t n, int64_t timeout_ms,
                                              size_t* attached);

/* Readers attached now (dead ones are reclaimed first). */
qds_status qds_stream_writer_readers(const qds_stream_writer* writer, size_t* out);

/* This writer's counters. */
qds_status qds_stream_writer_stats(const qds_stream_writer* writer, qds_stream_stats* out);

/* End the stream cleanly: readers drain every chunk, then get QDS_END_OF_STREAM. The name is unlinked unless
 * persistent; later writes return QDS_ERR_FINISHED. Idempotent. */
qds_status qds_stream_writer_finish(qds_stream_writer* writer);

/* Close without finishing (if not finished): readers drain, then get QDS_ERR_WRITER_CLOSED. The handle stays
 * allocated (later calls: QDS_ERR_CLOSED) until freed. */
qds_status qds_stream_writer_close(qds_stream_writer* writer);

/* Free (closing first, without finishing, if needed). NULL is ignored. */
void qds_stream_writer_free(qds_stream_writer* writer);

/* Attach a reader to the stream `name`. `opts` may be NULL (defaults: start at the oldest retained chunk). */
qds_status qds_stream_reader_open(const char* name, const qds_stream_reader_options* opts, qds_stream_reader** out);

/* The next chunk in order, as a stream of record batches in shared memory (no copy), waiting up to `timeout_ms`
 * (QDS_TIMEOUT_DEFAULT: the reader's timeout_ms with its retries; QDS_TIMEOUT_INFINITE). Returns QDS_OK (release
 * `*out` when done), QDS_END_OF_STREAM after finish and the last chunk, QDS_ERR_WRITER_DIED / QDS_ERR_WRITER_CLOSED
 * after the last published chunk, QDS_ERR_TIMEOUT, QDS_ERR_RING_HELD, QDS_ERR_CHUNKS_LOST. On anything but QDS_OK
 * `*out` is a released stream. `info` (may be NULL) gets the chunk's number in `seq`. */
qds_status qds_stream_reader_next_chunk(const qds_stream_reader* reader, int64_t timeout_ms,
                                        struct ArrowArrayStream* out, qds_frame_info* info);

/* The next chunk if one is ready now: QDS_OK, QDS_NO_FRAME (nothing yet), QDS_END_OF_STREAM, or the errors of
 * next_chunk (without timeouts). */
qds_status qds_stream_reader_try_next_chunk(const qds_stream_reader* reader, struct ArrowArrayStream* out,
                                            qds_frame_info* info);

/* The number of the next chunk this reader will return and the number of chunks it returned; either may be NULL. */
qds_status qds_stream_reader_position(const qds_stream_reader* reader, uint64_t* next, uint64_t* delivered);

/* This reader's counters. */
qds_status qds_stream_reader_stats(const qds_stream_reader* reader, qds_stream_stats* out);

/* Slot leases this reader holds right now (one per chunk with live exported data). For tests and diagnostics. */
qds_status qds_stream_reader_lease_count(const qds_stream_reader* reader, uint64_t* out);

/* Detach. Chunks already exported stay valid until released. The handle stays allocated until freed. */
qds_status qds_stream_reader_close(qds_stream_reader* reader);

/* Free (detaching first if needed). NULL is ignored. */
void qds_stream_reader_free(qds_stream_reader* reader);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* QADATASWAP_H */
