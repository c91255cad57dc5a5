// DuckDB-WASM's ES module imports "apache-arrow"; the page maps that name here
// (import map in index.html) and this re-exports the UMD build of Apache Arrow
// 17.0.0 that the page loads with a classic <script> (one file instead of
// ~150 modules). The names are every export of that build.
const A = globalThis.Arrow;
if (!A) throw new Error('Apache Arrow did not load (assets/vendor missing or the CDN is blocked)');
export default A;
export const {
  AsyncByteQueue, AsyncByteStream, AsyncMessageReader, AsyncRecordBatchFileReader,
  AsyncRecordBatchStreamReader, Binary, BinaryBuilder, Bool, BoolBuilder, BufferType, Builder,
  ByteStream, Data, DataType, DateBuilder, DateDay, DateDayBuilder, DateMillisecond,
  DateMillisecondBuilder, DateUnit, Date_, Decimal, DecimalBuilder, DenseUnion,
  DenseUnionBuilder, Dictionary, DictionaryBuilder, Duration, DurationBuilder,
  DurationMicrosecond, DurationMicrosecondBuilder, DurationMillisecond,
  DurationMillisecondBuilder, DurationNanosecond, DurationNanosecondBuilder, DurationSecond,
  DurationSecondBuilder, Field, FixedSizeBinary, FixedSizeBinaryBuilder, FixedSizeList,
  FixedSizeListBuilder, Float, FloatBuilder, Int, IntBuilder, Interval, IntervalBuilder,
  IntervalDayTime, IntervalDayTimeBuilder, IntervalUnit, IntervalYearMonth,
  IntervalYearMonthBuilder, JSONMessageReader, LargeBinary, LargeBinaryBuilder, List,
  ListBuilder, MapBuilder, MapRow, Map_, Message, MessageHeader, MessageReader, MetadataVersion,
  Null, NullBuilder, Precision, RecordBatch, RecordBatchFileReader, RecordBatchFileWriter,
  RecordBatchJSONWriter, RecordBatchReader, RecordBatchStreamReader, RecordBatchStreamWriter,
  RecordBatchWriter, Schema, SparseUnion, SparseUnionBuilder, Struct, StructBuilder, StructRow,
  Table, Time, TimeBuilder, TimeMicrosecond, TimeMicrosecondBuilder, TimeMillisecond,
  TimeMillisecondBuilder, TimeNanosecond, TimeNanosecondBuilder, TimeSecond, TimeSecondBuilder,
  TimeUnit, Timestamp, TimestampBuilder, TimestampMicrosecond, TimestampMicrosecondBuilder,
  TimestampMillisecond, TimestampMillisecondBuilder, TimestampNanosecond,
  TimestampNanosecondBuilder, TimestampSecond, TimestampSecondBuilder, Type, Union, UnionBuilder,
  UnionMode, Vector, Visitor, builderThroughAsyncIterable, builderThroughIterable, makeBuilder,
  makeData, makeTable, makeVector, tableFromArrays, tableFromIPC, tableFromJSON, tableToIPC,
  util, vectorFromArray
} = A;
