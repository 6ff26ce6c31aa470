/* stub */ typedef int ak_stub_path;
