// A Java program that links libdoublecrypt.so through JNA, the way a Kotlin
// or Java app would: format an image, write, read back, list, remount.
// Run by tests/test_jna.py: java -cp jna.jar:. DoubleCryptJna <lib dir> <image>
import com.sun.jna.Library;
import com.sun.jna.Memory;
import com.sun.jna.Native;
import com.sun.jna.NativeLibrary;
import com.sun.jna.Pointer;
import com.sun.jna.ptr.LongByReference;
import com.sun.jna.ptr.PointerByReference;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

public class DoubleCryptJna {
    public interface DC extends Library {
        int dc_init();
        String dc_strerror(int status);
        String dc_version_string();
        long dc_default_block_size();
        int dc_store_create_file(PointerByReference out, String path, int blockSize,
                                 long totalBlocks, Pointer progress, Pointer payload);
        int dc_store_open_file(PointerByReference out, String path, int blockSize, int readOnly);
        int dc_fs_format(PointerByReference out, Pointer store, byte[] key, Pointer opts);
        int dc_fs_mount(PointerByReference out, Pointer store, byte[] key, Pointer opts);
        void dc_fs_free(Pointer fs);
        String dc_fs_errmsg(Pointer fs);
        int dc_fs_mkdir(Pointer fs, String path, int mode);
        int dc_fs_create(Pointer fs, String path, int mode, int exclusive);
        int dc_fs_write(Pointer fs, String path, long offset, byte[] buf, long len);
        int dc_fs_read(Pointer fs, String path, long offset, byte[] buf, long len,
                       LongByReference outRead);
        int dc_fs_opendir(PointerByReference out, Pointer fs, String path);
        int dc_dir_next(Pointer dir, byte[] name, long nameCap, Pointer stat);
        void dc_dir_free(Pointer dir);
        int dc_fs_fsck(Pointer fs, Pointer report);
    }

    static DC dc;

    static void check(int rc, String what, Pointer fs) {
        if (rc < 0) {
            String detail = fs == null ? "" : " (" + dc.dc_fs_errmsg(fs) + ")";
            throw new RuntimeException(what + ": " + dc.dc_strerror(rc) + detail);
        }
    }

    static List<String> list(Pointer fs, String path) {
        PointerByReference dir = new PointerByReference();
        check(dc.dc_fs_opendir(dir, fs, path), "opendir", fs);
        byte[] name = new byte[256];
        List<String> names = new ArrayList<>();
        while (true) {
            int rc = dc.dc_dir_next(dir.getValue(), name, name.length, null);
            check(rc, "dir_next", fs);
            if (rc == 0) break;
            int n = 0;
            while (name[n] != 0) n++;
            names.add(new String(name, 0, n, StandardCharsets.UTF_8));
        }
        dc.dc_dir_free(dir.getValue());
        return names;
    }

    public static void main(String[] args) {
        NativeLibrary.addSearchPath("doublecrypt", args[0]);
        dc = Native.load("doublecrypt", DC.class);
        check(dc.dc_init(), "init", null);
        String image = args[1];
        byte[] key = new byte[32];
        for (int i = 0; i < 32; i++) key[i] = (byte) (i * 3);
        int bs = (int) dc.dc_default_block_size();

        PointerByReference store = new PointerByReference();
        check(dc.dc_store_create_file(store, image, bs, 256, null, null), "create image", null);
        PointerByReference fsRef = new PointerByReference();
        check(dc.dc_fs_format(fsRef, store.getValue(), key, null), "format", null);
        Pointer fs = fsRef.getValue();
        check(dc.dc_fs_mkdir(fs, "/kotlin", 0755), "mkdir", fs);
        check(dc.dc_fs_create(fs, "/kotlin/hello.txt", 0644, 1), "create", fs);
        byte[] text = "hello from the JVM".getBytes(StandardCharsets.UTF_8);
        check(dc.dc_fs_write(fs, "/kotlin/hello.txt", 0, text, text.length), "write", fs);
        dc.dc_fs_free(fs);

        check(dc.dc_store_open_file(store, image, bs, 0), "open image", null);
        check(dc.dc_fs_mount(fsRef, store.getValue(), key, null), "mount", null);
        fs = fsRef.getValue();
        byte[] back = new byte[100];
        LongByReference got = new LongByReference();
        check(dc.dc_fs_read(fs, "/kotlin/hello.txt", 0, back, back.length, got), "read", fs);
        String read = new String(back, 0, (int) got.getValue(), StandardCharsets.UTF_8);
        if (!read.equals("hello from the JVM")) throw new RuntimeException("read back " + read);
        List<String> names = list(fs, "/kotlin");
        if (!names.equals(List.of("hello.txt"))) throw new RuntimeException("listed " + names);
        check(dc.dc_fs_fsck(fs, null), "fsck", fs);
        dc.dc_fs_free(fs);

        byte[] wrong = new byte[32];
        check(dc.dc_store_open_file(store, image, bs, 0), "open image", null);
        int rc = dc.dc_fs_mount(fsRef, store.getValue(), wrong, null);
        if (rc != -7) throw new RuntimeException("wrong key gave " + rc);
        System.out.println("JNA " + dc.dc_version_string() + ": " + read + " " + names);
    }
}
