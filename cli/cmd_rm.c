/* stub */ typedef int ak_stub_cmd_rm;
