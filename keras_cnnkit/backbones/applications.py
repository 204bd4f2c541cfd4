"""Registry entries of the keras.applications convolutional networks.

Stage layers are the last layer of each output stride that every path of the
network goes through, restricted to layers keras.applications names explicitly
(auto-numbered names such as ``activation_2`` change from one build to the next).
:func:`keras_cnnkit.backbones.find_stage_ends` recomputes them from a built network.
"""

from __future__ import annotations

from keras_cnnkit.backbones.registry import BackboneEntry, register_backbone

_RESNET_DEPTHS = {"50": (4, 6), "101": (4, 23), "152": (8, 36)}
_RESNETV2_DEPTHS = {"50": (3, 5), "101": (3, 22), "152": (7, 35)}
_EFFICIENTNET_SIZES = (224, 240, 260, 300, 380, 456, 528, 600)
_EFFICIENTNET_V2 = {
    "b0": (224, "block1a_project_activation", "block2b_add"),
    "b1": (240, "block1b_add", "block2c_add"),
    "b2": (260, "block1b_add", "block2c_add"),
    "b3": (300, "block1b_add", "block2c_add"),
    "s": (384, "block1b_add", "block2d_add"),
    "m": (480, "block1c_add", "block2e_add"),
    "l": (480, "block1d_add", "block2g_add"),
}
_CONVNEXT_STAGE3 = {"tiny": 8, "small": 26, "base": 26, "large": 26, "xlarge": 26}


def _entries() -> list[BackboneEntry]:
    entries = [
        BackboneEntry(
            "vgg16",
            "VGG16",
            "vgg16",
            "caffe",
            224,
            32,
            ("block1_conv2", "block2_conv2", "block3_conv3", "block4_conv3", "block5_conv3"),
        ),
        BackboneEntry(
            "vgg19",
            "VGG19",
            "vgg19",
            "caffe",
            224,
            32,
            ("block1_conv2", "block2_conv2", "block3_conv4", "block4_conv4", "block5_conv4"),
        ),
    ]
    for depth, (n3, n4) in _RESNET_DEPTHS.items():
        entries.append(
            BackboneEntry(
                f"resnet{depth}",
                f"ResNet{depth}",
                "resnet",
                "caffe",
                224,
                32,
                (
                    "conv1_relu",
                    "conv2_block3_out",
                    f"conv3_block{n3}_out",
                    f"conv4_block{n4}_out",
                    "conv5_block3_out",
                ),
            )
        )
    for depth, (n3, n4) in _RESNETV2_DEPTHS.items():
        entries.append(
            BackboneEntry(
                f"resnet{depth}v2",
                f"ResNet{depth}V2",
                "resnet_v2",
                "tf",
                224,
                32,
                (
                    "conv1_conv",
                    "conv2_block2_out",
                    f"conv3_block{n3}_out",
                    f"conv4_block{n4}_out",
                    "post_relu",
                ),
            )
        )
    entries += [
        BackboneEntry(
            "inception_v3",
            "InceptionV3",
            "inception_v3",
            "tf",
            299,
            75,
            ("mixed2", "mixed7", "mixed10"),
        ),
        BackboneEntry(
            "inception_resnet_v2",
            "InceptionResNetV2",
            "inception_resnet_v2",
            "tf",
            299,
            75,
            ("block35_10_ac", "block17_20_ac", "conv_7b_ac"),
        ),
        BackboneEntry(
            "xception",
            "Xception",
            "xception",
            "tf",
            299,
            71,
            ("block1_conv2_act", "block14_sepconv2_act"),
        ),
        BackboneEntry(
            "mobilenet",
            "MobileNet",
            "mobilenet",
            "tf",
            224,
            32,
            (
                "conv_pw_1_relu",
                "conv_pw_3_relu",
                "conv_pw_5_relu",
                "conv_pw_11_relu",
                "conv_pw_13_relu",
            ),
        ),
        BackboneEntry(
            "mobilenetv2",
            "MobileNetV2",
            "mobilenet_v2",
            "tf",
            224,
            32,
            (
                "block_1_expand_relu",
                "block_3_expand_relu",
                "block_6_expand_relu",
                "block_13_expand_relu",
                "out_relu",
            ),
        ),
        BackboneEntry(
            "mobilenetv3small",
            "MobileNetV3Small",
            "mobilenet_v3",
            "raw",
            224,
            32,
            (
                "conv_bn",
                "expanded_conv_1_expand_bn",
                "expanded_conv_3_expand_bn",
                "expanded_conv_8_expand_bn",
                "conv_1_bn",
            ),
            {"include_preprocessing": True},
        ),
        BackboneEntry(
            "mobilenetv3large",
            "MobileNetV3Large",
            "mobilenet_v3",
            "raw",
            224,
            32,
            (
                "expanded_conv_1_expand_bn",
                "expanded_conv_3_expand_bn",
                "expanded_conv_6_expand_bn",
                "expanded_conv_12_expand_bn",
                "conv_1_bn",
            ),
            {"include_preprocessing": True},
        ),
    ]
    for depth in ("121", "169", "201"):
        entries.append(
            BackboneEntry(
                f"densenet{depth}",
                f"DenseNet{depth}",
                "densenet",
                "torch",
                224,
                32,
                ("conv1_relu", "pool2_conv", "pool3_conv", "pool4_conv", "relu"),
            )
        )
    for i, size in enumerate(_EFFICIENTNET_SIZES):
        entries.append(
            BackboneEntry(
                f"efficientnetb{i}",
                f"EfficientNetB{i}",
                "efficientnet",
                "raw",
                size,
                32,
                (
                    "block2a_expand_activation",
                    "block3a_expand_activation",
                    "block4a_expand_activation",
                    "block6a_expand_activation",
                    "top_activation",
                ),
            )
        )
    for variant, (size, tap1, tap2) in _EFFICIENTNET_V2.items():
        entries.append(
            BackboneEntry(
                f"efficientnetv2{variant}",
                f"EfficientNetV2{variant.upper()}",
                "efficientnet_v2",
                "raw",
                size,
                32,
                (
                    tap1,
                    tap2,
                    "block4a_expand_activation",
                    "block6a_expand_activation",
                    "top_activation",
                ),
                {"include_preprocessing": True},
                model_name=f"efficientnetv2-{variant}",
            )
        )
    for variant, last in _CONVNEXT_STAGE3.items():
        name = f"convnext_{variant}"
        entries.append(
            BackboneEntry(
                name,
                f"ConvNeXt{variant.capitalize() if variant != 'xlarge' else 'XLarge'}",
                "convnext",
                "raw",
                224,
                32,
                (
                    f"{name}_stage_0_block_2_identity",
                    f"{name}_stage_1_block_2_identity",
                    f"{name}_stage_2_block_{last}_identity",
                    f"{name}_stage_3_block_2_identity",
                ),
                {"include_preprocessing": True},
            )
        )
    entries += [
        BackboneEntry(
            "nasnetmobile",
            "NASNetMobile",
            "nasnet",
            "tf",
            224,
            32,
            ("stem_bn1", "normal_concat_12"),
        ),
        BackboneEntry(
            "nasnetlarge",
            "NASNetLarge",
            "nasnet",
            "tf",
            331,
            32,
            ("stem_bn1", "normal_concat_18"),
        ),
    ]
    return entries


for _entry in _entries():
    register_backbone(_entry, overwrite=True)
