#pragma once
// The engine reads untrusted input: the GGUF file itself (weights may come
// from anywhere) and, under warden serve, hostile text in chat templates,
// the tokenizer and HTTP/JSON parsing. Every command that runs it (serve,
// generate, plain chat) confines its own process first, so that a bug in
// one of those parsers gives an attacker neither the user's files nor the
// network nor other programs.
#include <string>
#include <vector>

namespace warden::cli {

// Landlock: only the model file, its own folder of the packed-weights cache
// (read and write; made first, with room for a new copy) and the /proc,
// /sys and /etc files the engine sizes its threads and memory from remain
// readable (a kernel without Landlock gets a warning). Then
// sandbox::confine_engine_process(): no new sockets, connections, programs
// or processes. Call first thing, while the process has one thread
// (Landlock binds the calling thread and what it starts), once any socket
// it will listen on exists. Throws warden::Error when it cannot.
void confine_engine(const std::string& model);
// The same for several models at once (warden bench loads them one after
// another), with `writable_files` besides, which the process may also
// write (bench resets its peak RSS through /proc/self/clear_refs).
void confine_engine(const std::vector<std::string>& models, const std::vector<std::string>& writable_files);

// For a command that only reads a model file and prints (inspect): Landlock
// leaves it that file alone, and both filters apply at once.
void confine_model_reader(const std::string& model);

// The second step, once the engine is loaded (its packed weights written):
// sandbox::forbid_file_changes(), so that the hostile text the engine reads
// from now on (prompts, requests) could not change any file, the model's
// cached copy included, even by taking the process over.
void confine_loaded_engine();

}  // namespace warden::cli
