#include <qadataswap/shared_dataframe.h>
#include <arrow/json/from_string.h>
#include <iostream>
#include <unistd.h>

int main() {
  std::string name = "qads-consumer-" + std::to_string(getpid());
  auto col = arrow::json::ArrayFromJSONString(arrow::int64(), "[1, 2, 3]").ValueOrDie();
  auto table = arrow::Table::Make(arrow::schema({arrow::field("x", arrow::int64())}), {col});
  auto writer = qadataswap::SharedDataFrame::CreateWriter(name, 1 << 20);
  writer->Write(table);
  auto reader = qadataswap::SharedDataFrame::CreateReader(name);
  auto result = reader->Read();
  auto got = result.ValueOrDie();
  std::cout << "consumer_cpp: " << got->num_rows() << " rows" << std::endl;
  return got->Equals(*table) ? 0 : 1;
}
