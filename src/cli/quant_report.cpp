// Plan reports: the per-tensor table, the size summary and grouped fallback warnings.
#include "cli/quant_report.h"

#include <map>

#include <fmt/format.h>

#include "cli/console.h"
#include "cli/text_table.h"

namespace ember::cli {
namespace {

using Align = TextTable::Align;

double bits_per_weight(uint64_t bytes, uint64_t n_elements) {
  return n_elements == 0 ? 0.0 : 8.0 * static_cast<double>(bytes) / static_cast<double>(n_elements);
}

}  // namespace

std::string plan_text(const QuantPlan& plan) {
  std::string out;
  TextTable table({Align::kLeft, Align::kRight, Align::kLeft, Align::kRight, Align::kLeft});
  table.add_row({"tensor", "shape", "type", "size", "note"});
  for (const TensorPlan& p : plan.tensors) {
    const std::string type = p.converted() ? fmt::format("{} -> {}", dtype_name(p.from), dtype_name(p.to))
                                           : fmt::format("{} (copied)", dtype_name(p.from));
    table.add_row({p.name, shape_text(p.shape), type, human_bytes(p.to_bytes), p.note});
  }
  table.render(out);
  return out;
}

std::string summary_text(const QuantPlan& plan) {
  size_t converted = 0;
  for (const TensorPlan& p : plan.tensors) converted += p.converted() ? 1 : 0;
  return fmt::format(
      "  tensors: {} ({} converted, {} copied, {} fallbacks)\n"
      "  size:    {} -> {} ({:.2f} -> {:.2f} bits per weight)\n",
      plan.tensors.size(), converted, plan.tensors.size() - converted, plan.n_fallback, human_bytes(plan.from_bytes),
      human_bytes(plan.to_bytes), bits_per_weight(plan.from_bytes, plan.n_elements),
      bits_per_weight(plan.to_bytes, plan.n_elements));
}

void warn_fallbacks(const QuantPlan& plan) {
  struct Group {
    std::string first;
    size_t count = 0;
  };
  std::map<std::string, Group> groups;  // by note
  std::vector<std::string> order;
  for (const TensorPlan& p : plan.tensors) {
    if (p.note.empty()) continue;
    Group& g = groups[p.note];
    if (g.count++ == 0) {
      g.first = p.name;
      order.push_back(p.note);
    }
  }
  for (const std::string& note : order) {
    const Group& g = groups[note];
    const std::string who = g.count == 1 ? fmt::format("tensor '{}'", g.first)
                                         : fmt::format("{} tensors ('{}' and {} more)", g.count, g.first, g.count - 1);
    print_warning(fmt::format("{}: {}", who, note));
  }
}

}  // namespace ember::cli
