// kontor export: the evidence bundle of a message.

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client/commands.h"
#include "client/json.h"

namespace kontor {
namespace cli {
namespace {

// A file name the node sent for an export: relative, no "..", plain
// characters only (the node is trusted, but a path is never taken blindly).
bool SafeExportName(const std::string& name) {
  if (name.empty() || name.size() > 200 || name[0] == '/') return false;
  for (absl::string_view part : absl::StrSplit(name, '/')) {
    if (part.empty() || part == "." || part == "..") return false;
  }
  for (char c : name) {
    if (!(absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' ||
          c == '-' || c == '_' || c == '/')) {
      return false;
    }
  }
  return true;
}

}  // namespace

int Export(const Options& o, v1::Local::Stub* stub) {
  Args a(o.args, {});
  if (auto e = a.Check({"out"}); !e.empty()) return Fail(kUsage, e);
  if (a.positional().size() != 1 || a.Get("out").empty()) {
    return Fail(kUsage, "usage: kontor export MSGID --out DIR");
  }
  namespace fs = std::filesystem;
  std::string out_arg = a.Get("out");
  while (out_arg.size() > 1 && out_arg.back() == '/') out_arg.pop_back();
  const fs::path out = out_arg;
  std::error_code ec;
  if (fs::exists(out, ec) || fs::is_symlink(out, ec)) {
    return Fail(kUsage, absl::StrCat(out.string(),
                                     " already exists; name a new directory"));
  }
  v1::ExportRequest req;
  req.set_message_id(a.positional()[0]);
  v1::ExportResponse resp;
  grpc::ClientContext c;
  SetDeadline(&c);
  auto s = stub->Export(&c, req, &resp);
  if (!s.ok()) return RpcFail(s, o);
  // mkdir is the atomic claim: nothing that exists is written into or
  // replaced. On any failure the directory goes again.
  if (mkdir(out.c_str(), 0700) != 0) {
    return Fail(
        errno == EEXIST ? kUsage : kFailed,
        absl::StrCat("cannot create ", out.string(), ": ", strerror(errno)));
  }
  auto abandon = [&](const std::string& why) {
    fs::remove_all(out, ec);
    return Fail(kFailed, why);
  };
  for (const auto& f : resp.files()) {
    if (!SafeExportName(f.name())) {
      return abandon(absl::StrCat("the node sent an unsafe file name: ",
                                  Safe(f.name(), 80)));
    }
    const fs::path path = out / f.name();
    fs::create_directories(path.parent_path(), ec);
    std::ofstream file(path, std::ios::binary | std::ios::trunc);
    file.write(f.content().data(),
               static_cast<std::streamsize>(f.content().size()));
    file.close();
    if (!file) return abandon(absl::StrCat("cannot write ", path.string()));
    if (f.name() == "verify.sh") {
      fs::permissions(path, fs::perms::owner_exec, fs::perm_options::add, ec);
    }
  }
  if (o.json) {
    google::protobuf::Value v;
    auto* fields = v.mutable_struct_value()->mutable_fields();
    (*fields)["dir"].set_string_value(out.string());
    auto* names = (*fields)["files"].mutable_list_value();
    for (const auto& f : resp.files()) {
      names->add_values()->set_string_value(f.name());
    }
    printf("%s\n", ToJson(v, false).c_str());
    return kOk;
  }
  printf(
      "wrote %d files to %s\nverify without Kontor: cd %s && sh verify.sh "
      "(see README.md)\n",
      resp.files_size(), out.string().c_str(), out.string().c_str());
  return kOk;
}

}  // namespace cli
}  // namespace kontor
