#ifndef KONTOR_CLIENT_COMMANDS_H_
#define KONTOR_CLIENT_COMMANDS_H_

// The `kontor` commands, one file each (cmd_*.cc), and their help.

#include <string>
#include <vector>

#include "client/cli.h"

namespace kontor {
namespace cli {

// A command: runs with the parsed options and a stub connected to the node
// (null for commands that need no node). Returns the exit code.
using CommandFn = int (*)(const Options&, v1::Local::Stub*);

struct Command {
  const char* name;
  CommandFn run;
  bool needs_node;
  const char* usage;  // the first line(s) of `kontor COMMAND --help`
  const char* help;   // what it does, its options
};

// Every command, in the order `kontor --help` lists them.
const std::vector<Command>& Commands();

int Send(const Options& o, v1::Local::Stub* stub);
int Status(const Options& o, v1::Local::Stub* stub);
int Inbox(const Options& o, v1::Local::Stub* stub);
int Show(const Options& o, v1::Local::Stub* stub);
int Ack(const Options& o, v1::Local::Stub* stub);
int Watch(const Options& o, v1::Local::Stub* stub);
int Peers(const Options& o, v1::Local::Stub* stub);
int Outbox(const Options& o, v1::Local::Stub* stub);
int Cancel(const Options& o, v1::Local::Stub* stub);
int Retry(const Options& o, v1::Local::Stub* stub);
int Template(const Options& o, v1::Local::Stub* stub);
int Thread(const Options& o, v1::Local::Stub* stub);
int Audit(const Options& o, v1::Local::Stub* stub);
int Purge(const Options& o, v1::Local::Stub* stub);
int Export(const Options& o, v1::Local::Stub* stub);

}  // namespace cli
}  // namespace kontor

#endif  // KONTOR_CLIENT_COMMANDS_H_
