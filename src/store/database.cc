#include "store/database.h"

#include <string>

namespace moatless::store {

core::Result<Row> Transaction::QueryOne(std::string_view sql, Params params) {
  ASSIGN_OR_RETURN(std::vector<Row> rows, Query(sql, params));
  if (rows.empty()) return core::NotFoundError("query returned no row");
  if (rows.size() > 1) {
    return core::InternalError("query returned " + std::to_string(rows.size()) +
                               " rows, expected one");
  }
  return std::move(rows.front());
}

core::Result<std::optional<Row>> Transaction::QueryOptional(std::string_view sql, Params params) {
  ASSIGN_OR_RETURN(std::vector<Row> rows, Query(sql, params));
  if (rows.empty()) return std::optional<Row>();
  if (rows.size() > 1) {
    return core::InternalError("query returned " + std::to_string(rows.size()) +
                               " rows, expected at most one");
  }
  return std::optional<Row>(std::move(rows.front()));
}

}  // namespace moatless::store
