"""USDZ for AR Quick Look: one textured UsdGeom.Mesh with a UsdPreviewSurface, plus USD's validators."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import numpy as np

#: Validator families run on every package (all of them, so new checks in USD are picked up).
VALIDATOR_PREFIXES = ("usdUtilsValidators:", "usdGeomValidators:", "usdShadeValidators:", "usdValidation:")


def _prim_name(name: str) -> str:
    """A valid USD prim identifier from a product name ("Blue vase #2" -> "Blue_vase_2")."""
    ident = re.sub(r"[^A-Za-z0-9_]+", "_", name).strip("_") or "Model"
    return ident if not ident[0].isdigit() else f"_{ident}"


def write_usdz(
    path: Path, points: np.ndarray, faces: np.ndarray, normals: np.ndarray, uv: np.ndarray,
    texture_bytes: bytes, texture_ext: str, name: str, roughness: float,
) -> None:
    """Write a USDZ package atomically.

    points/normals (V, 3) float in metres (product frame, +Y up), faces (F, 3) counter-clockwise,
    uv (V, 2) in glTF convention (v = 0 at the top; flipped here because USD's st has v = 0 at the
    bottom), texture_bytes an encoded PNG/JPEG whose extension is texture_ext ("jpg" or "png").
    """
    from pxr import Gf, Kind, Sdf, Usd, UsdGeom, UsdShade, UsdUtils, Vt

    path = Path(path)
    with tempfile.TemporaryDirectory(prefix=".plinth-usd-", dir=path.parent) as tmp:
        tex_name = f"texture.{texture_ext}"
        Path(tmp, tex_name).write_bytes(texture_bytes)
        layer_path = str(Path(tmp, "model.usdc"))
        stage = Usd.Stage.CreateNew(layer_path)
        UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.y)
        UsdGeom.SetStageMetersPerUnit(stage, 1.0)
        stage.SetMetadata("comment", "Made with Plinth")

        root = UsdGeom.Xform.Define(stage, "/" + _prim_name(name))
        stage.SetDefaultPrim(root.GetPrim())
        Usd.ModelAPI(root.GetPrim()).SetKind(Kind.Tokens.component)
        if name:
            root.GetPrim().SetDisplayName(name)
        base = root.GetPath()

        mesh = UsdGeom.Mesh.Define(stage, base.AppendChild("Geometry"))
        pts = np.ascontiguousarray(points, np.float32)
        mesh.CreatePointsAttr(Vt.Vec3fArray.FromNumpy(pts))
        mesh.CreateFaceVertexCountsAttr(Vt.IntArray.FromNumpy(np.full(len(faces), 3, np.int32)))
        mesh.CreateFaceVertexIndicesAttr(Vt.IntArray.FromNumpy(np.ascontiguousarray(faces, np.int32).ravel()))
        mesh.CreateNormalsAttr(Vt.Vec3fArray.FromNumpy(np.ascontiguousarray(normals, np.float32)))
        mesh.SetNormalsInterpolation(UsdGeom.Tokens.vertex)
        mesh.CreateSubdivisionSchemeAttr(UsdGeom.Tokens.none)
        mesh.CreateDoubleSidedAttr(False)
        lo, hi = pts.min(0), pts.max(0)
        mesh.CreateExtentAttr(Vt.Vec3fArray([Gf.Vec3f(*map(float, lo)), Gf.Vec3f(*map(float, hi))]))
        st = UsdGeom.PrimvarsAPI(mesh.GetPrim()).CreatePrimvar(
            "st", Sdf.ValueTypeNames.TexCoord2fArray, UsdGeom.Tokens.vertex)
        st_values = np.ascontiguousarray(np.stack([uv[:, 0], 1.0 - uv[:, 1]], 1), np.float32)
        st.Set(Vt.Vec2fArray.FromNumpy(st_values))

        mat_path = base.AppendChild("Materials").AppendChild("Material")
        UsdGeom.Scope.Define(stage, mat_path.GetParentPath())
        material = UsdShade.Material.Define(stage, mat_path)
        surface = UsdShade.Shader.Define(stage, mat_path.AppendChild("PreviewSurface"))
        surface.CreateIdAttr("UsdPreviewSurface")
        surface.CreateInput("roughness", Sdf.ValueTypeNames.Float).Set(float(roughness))
        surface.CreateInput("metallic", Sdf.ValueTypeNames.Float).Set(0.0)
        reader = UsdShade.Shader.Define(stage, mat_path.AppendChild("STReader"))
        reader.CreateIdAttr("UsdPrimvarReader_float2")
        reader.CreateInput("varname", Sdf.ValueTypeNames.String).Set("st")
        reader_out = reader.CreateOutput("result", Sdf.ValueTypeNames.Float2)
        tex = UsdShade.Shader.Define(stage, mat_path.AppendChild("BaseColorTexture"))
        tex.CreateIdAttr("UsdUVTexture")
        tex.CreateInput("file", Sdf.ValueTypeNames.Asset).Set(Sdf.AssetPath(tex_name))
        tex.CreateInput("st", Sdf.ValueTypeNames.Float2).ConnectToSource(reader_out)
        tex.CreateInput("wrapS", Sdf.ValueTypeNames.Token).Set("repeat")
        tex.CreateInput("wrapT", Sdf.ValueTypeNames.Token).Set("repeat")
        tex.CreateInput("sourceColorSpace", Sdf.ValueTypeNames.Token).Set("sRGB")
        rgb = tex.CreateOutput("rgb", Sdf.ValueTypeNames.Float3)
        surface.CreateInput("diffuseColor", Sdf.ValueTypeNames.Color3f).ConnectToSource(rgb)
        material.CreateSurfaceOutput().ConnectToSource(surface.ConnectableAPI(), "surface")
        UsdShade.MaterialBindingAPI.Apply(mesh.GetPrim()).Bind(material)
        stage.GetRootLayer().Save()
        del stage

        tmp_usdz = Path(tmp, "model.usdz")
        if not UsdUtils.CreateNewARKitUsdzPackage(Sdf.AssetPath(layer_path), str(tmp_usdz)):
            raise RuntimeError("export: USD could not write the USDZ package")
        os.replace(tmp_usdz, path)  # same folder: atomic


def validate_usdz(path: str | Path, warnings: bool = False) -> list[str]:
    """Run USD's validators on a packaged stage; return error messages (and warnings if asked)."""
    from pxr import Usd, UsdValidation

    reg = UsdValidation.ValidationRegistry()
    names = [m.name for m in reg.GetAllValidatorMetadata() if str(m.name).startswith(VALIDATOR_PREFIXES)]
    validators = reg.GetOrLoadValidatorsByName(names)
    stage = Usd.Stage.Open(str(path))
    if stage is None:
        return [f"cannot open {path}"]
    errors = UsdValidation.ValidationContext(validators).Validate(stage)
    kinds = {UsdValidation.ValidationErrorType.Error}
    if warnings:
        kinds.add(UsdValidation.ValidationErrorType.Warn)
    return [f"{e.GetValidator().GetMetadata().name if e.GetValidator() else ''}: {e.GetMessage()}"
            for e in errors if e.GetType() in kinds]
