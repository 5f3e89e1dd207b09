// "mqtt-server passwd": adds, changes and deletes users in a password file.
//
//   mqtt-server passwd [-c] [-i ITERATIONS] FILE USER            (asks for the password)
//   mqtt-server passwd -b [-c] [-i ITERATIONS] FILE USER PASSWORD
//   mqtt-server passwd -D FILE USER
//
// The password is read twice from the terminal with echo off, or once (one
// line) from standard input when that is not a terminal, so scripts can pipe it.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

namespace auth {

// Entry point for the subcommand: argv[0] is the subcommand's name ("passwd"),
// the options and operands follow. Returns the process exit code (0 on
// success; 1 on failure, 2 on a usage error) after printing any error to stderr.
int passwd_main(int argc, char** argv);

// The same with everything injectable, for tests: `args` without the
// subcommand's name; the password is read from `in_fd`; messages go to `err`.
int passwd_command(const std::vector<std::string>& args, int in_fd, std::FILE* err);

}  // namespace auth
