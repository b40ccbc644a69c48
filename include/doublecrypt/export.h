/*
 * doublecrypt/export.h - symbol visibility and attribute macros.
 *
 * Every public declaration is written `DC_API type name(...)`. The cffi
 * extractor and the export-list generator strip these macros by name, so
 * keep them here and nowhere else.
 */
#ifndef DOUBLECRYPT_EXPORT_H
#define DOUBLECRYPT_EXPORT_H

#if defined(DC_STATIC)
/* Compiled into another binary (the Python extension): nothing is exported. */
#define DC_API
#elif defined(_WIN32)
#if defined(DC_BUILDING)
#define DC_API __declspec(dllexport)
#else
#define DC_API __declspec(dllimport)
#endif
#elif defined(__GNUC__)
#define DC_API __attribute__((visibility("default")))
#else
#define DC_API
#endif

/* Results of functions that verify, decrypt or commit must not be ignored. */
#if defined(__GNUC__)
#define DC_NODISCARD __attribute__((warn_unused_result))
#else
#define DC_NODISCARD
#endif

#ifdef __cplusplus
#define DC_BEGIN_DECLS extern "C" {
#define DC_END_DECLS }
#else
#define DC_BEGIN_DECLS
#define DC_END_DECLS
#endif

#endif /* DOUBLECRYPT_EXPORT_H */
